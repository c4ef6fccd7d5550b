"""Users and their API tokens: add, change, remove, and the first admin."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobyard.access import credentials
from jobyard.access.records import Principal, Token, User
from jobyard.access.roles import Role, with_article
from jobyard.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from jobyard.store import Store
from jobyard.store.access import LastAdmin, UserGone
from jobyard.text import text_problem

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
MIN_PASSWORD = 8
FIRST_ADMIN = "admin"


@dataclass(frozen=True)
class NewToken:
    token: Token
    secret: str  # shown once; only its digest is stored


class Accounts:
    """The user and token verbs shared by the API and the CLI."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self._store = store.access
        self._now = clock

    def add_user(self, name: str, role: Role, password: str) -> User:
        _check_name(name)
        _check_password(password)
        user = self._store.add_user(name, role, credentials.hash_password(password), self._now())
        if user is None:
            raise Conflict(f"a user named {name!r} exists")
        return user

    def users(self) -> list[User]:
        return self._store.list_users()

    def exists(self, name: str) -> bool:
        return self._store.user(name) is not None

    def user(self, name: str) -> User:
        found = self._store.user(name)
        if found is None:
            raise NotFound(f"no user named {name!r}")
        return found[0]

    def set_password(self, name: str, password: str) -> User:
        """A new password; it ends the user's browser sessions (the old one may be known)."""
        _check_password(password)
        self._change(name, password_hash=credentials.hash_password(password))
        self._store.remove_sessions(name)
        return self.user(name)

    @staticmethod
    def check_new_password(current: str, new: str) -> None:
        """The rules a user's own new password follows: those of every password, and
        another than the current one (its change would end their sessions for nothing)."""
        _check_password(new, "new_password")
        if new == current:
            message = "must differ from the current password"
            raise Invalid("the new password is the current one", [_field("new_password", message)])

    def set_role(self, name: str, role: Role) -> User:
        """A new role; the last admin cannot be demoted (nobody could manage users then)."""
        self._change(name, role=role)
        return self.user(name)

    def remove_user(self, name: str) -> None:
        """Remove a user with their tokens and sessions, but not the last admin."""
        self.user(name)  # exactly this name (404): MariaDB's collation ignores trailing spaces
        try:
            removed = self._store.remove_user(name)
        except LastAdmin:
            raise _last_admin(name) from None
        if not removed:
            raise NotFound(f"no user named {name!r}")

    def first_admin(self, password: str | None) -> str | None:
        """On a database without users, create ``admin``; the password made up, if any.

        Returns the generated password (to be shown once) when none was given;
        None when users existed or ``password`` was used.
        """
        if self._store.count_users():
            return None
        if password:
            _check_password(password)
        chosen = password or credentials.new_password()
        now = self._now()
        added = self._store.add_user(
            FIRST_ADMIN, Role.ADMIN, credentials.hash_password(chosen), now
        )
        if added is None:  # another node created it at the same moment
            return None
        return None if password else chosen

    # -- tokens ---------------------------------------------------------------------
    def add_token(
        self, owner: Principal, name: str, role: Role | None, expires_in: timedelta | None
    ) -> NewToken:
        """A token of ``owner``'s with a role no higher than the one they act with.

        A token made with a token ends no later than that one, and is revoked
        with it: else a stolen short-lived token could make itself a lasting one.
        """
        wanted = role or owner.role
        if not owner.role.allows(wanted):
            raise Forbidden(f"{with_article(owner.role)} cannot create a token with role {wanted}")
        if not name.strip() or len(name) > 100:
            raise Invalid("bad token name", [_field("name", "1 to 100 characters")])
        now = self._now()
        expires_at = now + expires_in if expires_in is not None else None
        secret = credentials.new_secret()
        digest = credentials.digest(secret)
        with _still_there(owner):
            token = self._store.add_token(
                owner.user_id, owner.name, name, wanted, digest, now, expires_at, owner.token_id
            )
        if token is None:  # revoked or expired since this request was let in
            raise Forbidden("the token this request was made with is no longer valid")
        return NewToken(token, secret)

    def tokens(self, viewer: Principal, everyone: bool = False) -> list[Token]:
        """The viewer's tokens; every user's when ``everyone`` (admins only)."""
        if everyone and viewer.role is not Role.ADMIN:
            raise Forbidden("only an admin sees every user's tokens")
        with _still_there(viewer):
            return self._store.list_tokens(viewer.user_id, viewer.name, everyone)

    def revoke_token(self, viewer: Principal, token_id: int) -> Token:
        """Revoke a token (one's own, or anyone's for an admin) and the tokens made with it."""
        anyones = viewer.role is Role.ADMIN
        with _still_there(viewer):
            token = self._store.revoke_token(
                token_id, self._now(), viewer.user_id, viewer.name, anyones
            )
        if token is None:
            raise NotFound(f"no token {token_id}")
        return token

    def _change(self, name: str, **values: object) -> None:
        self.user(name)  # exactly this name (404): MariaDB's collation ignores trailing spaces
        try:
            changed = self._store.change_user(name, self._now(), **values)
        except LastAdmin:
            raise _last_admin(name) from None
        if not changed:
            raise NotFound(f"no user named {name!r}")


@contextmanager
def _still_there(who: Principal) -> Iterator[None]:
    """401 when the user ``who`` was let in as is removed before their request writes:
    their id may be another user's by then, whose tokens it must not touch."""
    try:
        yield
    except UserGone:
        raise Unauthorized(f"the user {who.name!r} was removed") from None


def _last_admin(name: str) -> Conflict:
    return Conflict(f"{name!r} is the last admin; add another admin first")


def could_be_a_name(name: str) -> bool:
    """Whether ``name`` is a user name as :meth:`Accounts.add_user` allows them."""
    return NAME_RE.fullmatch(name) is not None


def _check_name(name: str) -> None:
    if not could_be_a_name(name):
        message = "1 to 100 letters, digits or . _ @ -, starting with a letter or digit"
        raise Invalid(f"bad user name {name!r}", [_field("name", message)])


def _check_password(password: str, field: str = "password") -> None:
    # Only its hash is stored, but the API refuses a NUL or a lone surrogate in any text it
    # is sent (api.inputs): such a password, set from the page or the database, could never
    # be given as the current one to change it again (and Argon2 cannot hash a surrogate).
    if problem := text_problem(password):
        raise Invalid(f"the password {problem}", [_field(field, problem)])
    if len(password) < MIN_PASSWORD:
        raise Invalid(
            "the password is too short",
            [_field(field, f"at least {MIN_PASSWORD} characters")],
        )


def _field(name: str, message: str) -> dict[str, str]:
    return {"field": name, "location": "body", "message": message}
