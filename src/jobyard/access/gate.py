"""Authentication: a password, an API token or a session cookie becomes a :class:`Principal`.

Argon2id makes a password check cost ~0.1 s of CPU, on purpose. HTTP Basic sends
the password with every request, so a checked password is remembered, in
memory, as an HMAC of the name and password under a key that lives only in this
process, beside the hash it matched: the user's row is still read on every
request, so a removed user or a changed password stops working at once.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from jobyard.access import credentials
from jobyard.access.accounts import could_be_a_name
from jobyard.access.audit import Audit
from jobyard.access.records import Principal, User
from jobyard.access.throttle import Throttle
from jobyard.errors import Forbidden, TooManyAttempts, Unauthorized
from jobyard.store import Store

SESSION_TTL = timedelta(hours=12)
SESSION_PREFIX = "jys_"
_REMEMBERED = 1024  # checked passwords kept


class Gate:
    def __init__(
        self,
        store: Store,
        audit: Audit,
        clock: Callable[[], datetime],
        throttle: Throttle | None = None,
    ) -> None:
        self._store = store.access
        self._audit = audit
        self._now = clock
        self.throttle = throttle or Throttle()
        self._key = secrets.token_bytes(32)
        self._checked: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()

    def password(self, name: str, password: str, address: str) -> Principal:
        """The user ``name`` if ``password`` is theirs; 401 (or 429 after many failures)."""
        user, _ = self._check(name, password, address)
        return Principal(user.id, user.name, user.role, "password")

    def token(self, secret: str) -> Principal:
        found = self._store.token_by_digest(credentials.digest(secret))
        if found is None or not found[0].valid(self._now()):
            raise Unauthorized("the token is unknown, expired or revoked")
        token, owner_role = found
        # A token never does more than its owner may now (they may have been demoted).
        role = min(token.role, owner_role, key=lambda r: r.rank)
        return Principal(token.user_id, token.user, role, "token", token_id=token.id)

    def session(self, secret: str) -> Principal:
        found = self._store.session(credentials.digest(secret), self._now())
        if found is None:
            raise Unauthorized("the session has ended or expired; log in again")
        user, csrf = found
        return Principal(user.id, user.name, user.role, "session", csrf=csrf)

    def login(self, name: str, password: str, address: str) -> tuple[str, Principal]:
        """A new browser session: its secret (the cookie) and who it is for."""
        user, checked = self._check(name, password, address)
        csrf = secrets.token_urlsafe(32)
        why = "the password changed while logging in; log in again"
        secret = self._new_session(user.id, name, csrf, checked.__eq__, why)
        principal = Principal(user.id, user.name, user.role, "session", csrf=csrf)
        self._audit.record(principal, "login", f"user {name}", address=address)
        return secret, principal

    def renewed_session(self, who: Principal, password: str) -> str:
        """A session of ``who`` under a new secret (the cookie), with their CSRF token: the
        one ``password`` was just set from goes on, though its old secret may be known.

        Refused (401) unless ``password`` is still the user's once it is stored: see
        :meth:`_new_session`.
        """
        if who.csrf is None:
            raise ValueError(f"{who.name} does not act with a session")
        key = self._key_of(who.name, password)
        return self._new_session(
            who.user_id,
            who.name,
            who.csrf,
            lambda stored: self._matches(key, password, stored),
            "the password changed again meanwhile; log in again",
        )

    def _new_session(
        self, user_id: int, name: str, csrf: str, current: Callable[[str], bool], why: str
    ) -> str:
        """Store a session of the user under a new secret (the cookie), and return it.

        A password changed (or the user removed) while the one that opens it was
        checked ended the user's sessions stored so far, not this one: so look again
        once it is stored, and remove it, refusing with ``why`` (401), unless the
        user is still there with a password hash that is ``current``.
        """
        secret = credentials.new_secret(SESSION_PREFIX)
        digest = credentials.digest(secret)
        now = self._now()
        self._store.add_session(digest, user_id, csrf, now, now + SESSION_TTL)
        found = self._store.user(name)
        if found is None or found[0].id != user_id or not current(found[1]):
            self._store.remove_session(digest)
            raise Unauthorized(why)
        return secret

    def logout(self, secret: str, address: str) -> None:
        """End a session; recorded as its user's ``logout`` unless it had ended already."""
        digest = credentials.digest(secret)
        found = self._store.session(digest, self._now())
        self._store.remove_session(digest)
        if found is not None:
            user, csrf = found
            who = Principal(user.id, user.name, user.role, "session", csrf=csrf)
            self._audit.record(who, "logout", f"user {user.name}", address=address)

    def password_again(self, name: str, password: str) -> Principal:
        """``password`` checked again for a stream it opened: as :meth:`password`, but
        neither throttled nor audited. A changed password or a removed user ends the
        stream; it is no failed login, and many streams must not lock the user out."""
        user, matches = self._owner_matches(name, password)
        if not matches:
            raise Unauthorized(f"the password of {name!r} was changed")
        return Principal(user.id, user.name, user.role, "password")

    def reauthenticate(self, name: str, password: str, address: str) -> None:
        """``password`` asked again of the signed-in ``name`` before a change only its owner
        may make (their own password): 403 when it is not theirs. Throttled with the logins,
        on the same counts: else a stolen session or token would be a way to guess it."""
        with self._turn(name, address):
            if not self._owner_matches(name, password)[1]:
                self.throttle.failed(name, address)
                raise Forbidden(f"that is not the current password of {name!r}")
            self.throttle.succeeded(name, address)

    def _owner_matches(self, name: str, password: str) -> tuple[User, bool]:
        """The signed-in user ``name`` (401 when removed since) and whether ``password``
        is theirs now."""
        found = self._store.user(name) if could_be_a_name(name) else None
        if found is None:
            raise Unauthorized(f"the user {name!r} was removed")
        user, stored = found
        return user, self._matches(self._key_of(name, password), password, stored)

    def _refuse_while_throttled(self, name: str, address: str) -> None:
        wait = self.throttle.wait(name, address)
        if wait:
            raise TooManyAttempts(f"too many failed logins for {name!r}; try again later", wait)

    @contextmanager
    def _turn(self, name: str, address: str) -> Iterator[None]:
        """The attempt's turn (:meth:`Throttle.turn`), or 429 while ``name`` is throttled."""
        with self.throttle.turn(name, address) as wait:
            if wait:
                raise TooManyAttempts(f"too many failed logins for {name!r}; try again later", wait)
            yield

    def _key_of(self, name: str, password: str) -> bytes:
        """The key under which a matched password is remembered (never the password)."""
        secret = f"{name}\0{password}".encode("utf-8", "surrogatepass")
        return hmac.digest(self._key, secret, "sha256")

    def _matches(self, key: bytes, password: str, stored: str) -> bool:
        """Whether ``password`` is the one ``stored`` hashes: remembered, or checked (slow)."""
        return self._known(key, stored) or credentials.password_matches(stored, password)

    def _known(self, key: bytes, stored: str) -> bool:
        """Whether the password of ``key`` matched ``stored`` before (fast)."""
        with self._lock:
            return self._checked.get(key) == stored

    def _check(self, name: str, password: str, address: str) -> tuple[User, str]:
        """The user ``name`` and the hash ``password`` matched, or 401 (429 when throttled)."""
        self._refuse_while_throttled(name, address)
        # A name no user can have (a NUL, which PostgreSQL cannot even compare) is not
        # looked up: it fails as an unknown name does, throttled and recorded alike.
        found = self._store.user(name) if could_be_a_name(name) else None
        stored = found[1] if found else _decoy()
        key = self._key_of(name, password)
        if found and self._known(key, stored):  # matched before: no guess, no turn
            self.throttle.succeeded(name, address)
            return found
        with self._turn(name, address):
            # Checked even when the name is unknown (against the decoy): a miss that
            # skipped the slow hash would answer faster, and so tell which names exist.
            if self._matches(key, password, stored) and found:
                self._remember(key, stored)
                self.throttle.succeeded(name, address)
                return found
            self.throttle.failed(name, address)
        self._audit.record(name, "login", f"user {name}", outcome="failed", address=address)
        raise Unauthorized("wrong user name or password")

    def _remember(self, key: bytes, stored: str) -> None:
        with self._lock:
            self._checked[key] = stored
            self._checked.move_to_end(key)
            while len(self._checked) > _REMEMBERED:
                self._checked.popitem(last=False)


@functools.cache
def _decoy() -> str:
    """Checked against when the name is unknown, so that a miss costs what a hit costs."""
    return credentials.hash_password(secrets.token_urlsafe(16))
