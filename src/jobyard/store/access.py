"""Users, their API tokens and browser sessions, and the audit log, on SQL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Dialect,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from jobyard.access.records import AuditEntry, AuditQuery, Token, User, still_valid
from jobyard.access.roles import Role
from jobyard.store.listing import folded_contains
from jobyard.store.part import Part
from jobyard.store.rows import load_json
from jobyard.store.tables import api_tokens, audit_log, sessions, users

_TOKEN = select(api_tokens, users.c.name.label("user"), users.c.role.label("user_role")).join(
    users, users.c.id == api_tokens.c.user_id
)
# Asked on every request: built once (SQLAlchemy then only looks up their compiled form).
_USER_BY_NAME = select(users).where(users.c.name == bindparam("name"))
_ADMINS = select(users.c.name).where(users.c.role == Role.ADMIN.value)
_TOKEN_BY_DIGEST = _TOKEN.where(api_tokens.c.digest == bindparam("digest"))
_LOCK_TOKEN = (
    select(api_tokens.c.expires_at, api_tokens.c.revoked_at)
    .where(api_tokens.c.id == bindparam("id"))
    .with_for_update()
)
# The row of the user a request was let in as, if still theirs: a shared lock, so a
# removal (which locks it first, :meth:`SqlAccess.remove_user`) waits for the write.
_USER_IS = select(users.c.id).where(
    users.c.id == bindparam("id"), users.c.name == bindparam("name")
)
_LOCK_USER = _USER_IS.with_for_update(read=True)
_SESSION = (
    select(users, sessions.c.csrf)
    .join(sessions, sessions.c.user_id == users.c.id)
    .where(sessions.c.digest == bindparam("digest"), sessions.c.expires_at > bindparam("now"))
)


class LastAdmin(Exception):
    """The change would leave no admin: nobody could manage users then."""


class UserGone(Exception):
    """The user a request was let in as was removed since (their id may be another's now)."""


class SqlAccess(Part):
    # -- users ------------------------------------------------------------------------
    def add_user(self, name: str, role: Role, password_hash: str, now: datetime) -> User | None:
        """The new user; None when the name is taken."""
        values: dict[str, Any] = {"name": name, "role": role.value, "password_hash": password_hash}
        values |= {"created_at": now, "updated_at": now}
        try:
            with self._write() as conn:
                conn.execute(insert(users).values(values))
        except IntegrityError:
            return None
        found = self.user(name)
        assert found is not None
        return found[0]

    def user(self, name: str) -> tuple[User, str] | None:
        """The user called ``name`` and their password hash, or None. Exactly ``name``:
        MariaDB's collation finds ``admin`` for ``admin `` (trailing spaces are ignored)."""
        with self._peek() as conn:
            row = conn.execute(_USER_BY_NAME, {"name": name}).mappings().first()
        return (_user(row), row["password_hash"]) if row and row["name"] == name else None

    def user_by_id(self, user_id: int) -> User | None:
        with self._read() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
        return _user(row) if row else None

    def list_users(self) -> list[User]:
        with self._read() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).mappings()
            return [_user(row) for row in rows]

    def count_users(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())

    def change_user(self, name: str, now: datetime, **values: Any) -> bool:
        """Set ``role`` and/or ``password_hash``; False when there is no such user.

        Raises :class:`LastAdmin` rather than demote the last admin.
        """
        if "role" in values:
            values["role"] = Role(values["role"]).value
        query = update(users).where(users.c.name == name).values(values | {"updated_at": now})
        with self._write() as conn:
            if values.get("role", Role.ADMIN.value) != Role.ADMIN.value:
                _keep_an_admin(conn, name)
            return bool(conn.execute(query).rowcount)

    def remove_user(self, name: str) -> bool:
        """Remove the user with their tokens and sessions; :class:`LastAdmin` if the last admin."""
        with self._write() as conn:
            _keep_an_admin(conn, name)
            # Locked before its tokens go: a token being added for it is then either
            # stored first, and removed here, or refused (:func:`_hold_user`).
            query = select(users.c.id).where(users.c.name == name).with_for_update()
            user_id = conn.execute(query).scalar()
            if user_id is None:
                return False
            for table in (api_tokens, sessions):
                conn.execute(delete(table).where(table.c.user_id == user_id))
            conn.execute(delete(users).where(users.c.id == user_id))
            return True

    # -- API tokens -------------------------------------------------------------------
    def add_token(
        self,
        user_id: int,
        user: str,
        name: str,
        role: Role,
        digest: str,
        now: datetime,
        expires_at: datetime | None,
        made_by: int | None = None,
    ) -> Token | None:
        """A new token of the user ``user_id`` called ``user``; one made with the token
        ``made_by`` ends no later than that one.

        Raises :class:`UserGone` when that user is no longer there. None when
        ``made_by`` is no longer valid at ``now`` (revoked, expired or gone): its
        row is locked meanwhile, so a revoke either comes first and refuses this
        token, or comes after and finds it.
        """
        values: dict[str, Any] = {"user_id": user_id, "name": name, "role": role.value}
        values |= {"digest": digest, "created_at": now, "made_by": made_by}
        with self._write() as conn:
            _hold_user(conn, user_id, user)
            if made_by is not None:
                maker = conn.execute(_LOCK_TOKEN, {"id": made_by}).first()
                if maker is None or not still_valid(maker.expires_at, maker.revoked_at, now):
                    return None
                expires_at = _earlier(expires_at, maker.expires_at)
            conn.execute(insert(api_tokens).values(values | {"expires_at": expires_at}))
            row = conn.execute(_TOKEN.where(api_tokens.c.digest == digest)).mappings().one()
        return _token(row)

    def token_by_digest(self, digest: str) -> tuple[Token, Role] | None:
        """The token with this digest and its owner's role now, or None."""
        with self._peek() as conn:
            row = conn.execute(_TOKEN_BY_DIGEST, {"digest": digest}).mappings().first()
        return (_token(row), Role(row["user_role"])) if row else None

    def list_tokens(self, user_id: int, user: str, everyone: bool = False) -> list[Token]:
        """The tokens (revoked ones too) of the user ``user_id`` called ``user``, or
        every user's when ``everyone``; newest first.

        Raises :class:`UserGone` when that user is no longer there.
        """
        query = _TOKEN.order_by(api_tokens.c.id.desc())
        if not everyone:
            query = query.where(api_tokens.c.user_id == user_id)
        with self._read() as conn:
            _hold_user(conn, user_id, user, lock=False)
            return [_token(row) for row in conn.execute(query).mappings()]

    def revoke_token(
        self, token_id: int, now: datetime, user_id: int, user: str, anyones: bool = False
    ) -> Token | None:
        """Revoke a token of the user ``user_id`` called ``user`` (anyone's when
        ``anyones``) and every token made with it.

        None when there is no such token; :class:`UserGone` when that user is no
        longer there. The tokens made with it, and those made with them, are
        revoked too: else a token could outlive its revoke in the tokens it made.
        """
        where = [api_tokens.c.id == token_id]
        if not anyones:
            where.append(api_tokens.c.user_id == user_id)
        unrevoked = [*where, api_tokens.c.revoked_at.is_(None)]
        with self._write() as conn:
            _hold_user(conn, user_id, user)
            conn.execute(update(api_tokens).where(*unrevoked).values(revoked_at=now))
            row = conn.execute(_TOKEN.where(*where)).mappings().first()
            if row is not None:
                _revoke_made_with(conn, row["id"], now)
        return _token(row) if row else None

    # -- browser sessions -------------------------------------------------------------
    def add_session(
        self, digest: str, user_id: int, csrf: str, now: datetime, expires_at: datetime
    ) -> None:
        values: dict[str, Any] = {"digest": digest, "user_id": user_id, "csrf": csrf}
        values |= {"created_at": now, "expires_at": expires_at}
        with self._write() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
            conn.execute(insert(sessions).values(values))

    def session(self, digest: str, now: datetime) -> tuple[User, str] | None:
        """The user of an unexpired session and its CSRF token, or None."""
        with self._peek() as conn:
            row = conn.execute(_SESSION, {"digest": digest, "now": now}).mappings().first()
        return (_user(row), row["csrf"]) if row else None

    def remove_session(self, digest: str) -> None:
        with self._write() as conn:
            conn.execute(delete(sessions).where(sessions.c.digest == digest))

    def remove_sessions(self, name: str) -> int:
        """End every session of the user called ``name``; how many there were."""
        owner = select(users.c.id).where(users.c.name == name).scalar_subquery()
        with self._write() as conn:
            return int(conn.execute(delete(sessions).where(sessions.c.user_id == owner)).rowcount)

    # -- audit log --------------------------------------------------------------------
    def record(self, entries: Iterable[AuditEntry]) -> None:
        rows = [audit_row(entry) for entry in entries]
        if rows:
            with self._write() as conn:
                conn.execute(insert(audit_log), rows)

    def find_audit(self, query: AuditQuery) -> tuple[list[AuditEntry], int]:
        where = _audit_filters(query, self._engine.dialect)
        listing = (
            select(audit_log)
            .where(*where)
            .order_by(audit_log.c.id.desc())
            .limit(query.per_page)
            .offset((query.page - 1) * query.per_page)
        )
        counting = select(func.count()).select_from(audit_log).where(*where)
        with self._read() as conn:
            entries = [_entry(row) for row in conn.execute(listing).mappings()]
            total = int(conn.execute(counting).scalar_one())
        return entries, total


def _keep_an_admin(conn: Connection, name: str) -> None:
    """Raise :class:`LastAdmin` if ``name`` is the only admin.

    The admins' rows stay locked until the transaction ends (SQLite's write
    transaction locks the whole database), so two admins demoting each other at
    once take turns, and the second sees the first's change.
    """
    query = _ADMINS.order_by(users.c.id).with_for_update()
    if list(conn.execute(query).scalars()) == [name]:
        raise LastAdmin(name)


def _hold_user(conn: Connection, user_id: int, name: str, lock: bool = True) -> None:
    """Raise :class:`UserGone` unless the user ``user_id`` is still there, called ``name``.

    A request is let in before it writes, and a slow password check leaves time to
    remove the user meanwhile, and (on SQLite, before revision 0020) to give their id
    to a new user: so the write looks again, in its own transaction. The row stays
    locked (shared) until that ends, so the user is not removed under the write;
    a read needs no ``lock``.
    """
    if (
        conn.execute(_LOCK_USER if lock else _USER_IS, {"id": user_id, "name": name}).first()
        is None
    ):
        raise UserGone(name)


def _revoke_made_with(conn: Connection, token_id: int, now: datetime) -> None:
    """Revoke the tokens made with ``token_id``, generation by generation."""
    made = [token_id]
    while made:
        children = select(api_tokens.c.id).where(api_tokens.c.made_by.in_(made))
        made = list(conn.execute(children).scalars())
        unrevoked = [api_tokens.c.id.in_(made), api_tokens.c.revoked_at.is_(None)]
        if made:
            conn.execute(update(api_tokens).where(*unrevoked).values(revoked_at=now))


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    """The earlier of two ends, None being never."""
    return b if a is None else a if b is None else min(a, b)


def _user(row: Mapping[Any, Any]) -> User:
    return User(row["id"], row["name"], Role(row["role"]), row["created_at"], row["updated_at"])


def _token(row: Mapping[Any, Any]) -> Token:
    return Token(
        id=row["id"],
        user_id=row["user_id"],
        user=row["user"],
        name=row["name"],
        role=Role(row["role"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        made_by=row["made_by"],
    )


def audit_row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at,
        "actor": entry.actor[:100],
        "via": entry.via,
        "action": entry.action[:64],
        "target": entry.target[:255],
        "outcome": entry.outcome,
        "address": entry.address[:64],
        "detail": entry.detail,
    }


def _entry(row: Mapping[Any, Any]) -> AuditEntry:
    names = ("at", "actor", "via", "action", "target", "outcome", "address", "id")
    detail = load_json(row["detail"]) if row["detail"] is not None else None
    return AuditEntry(**{name: row[name] for name in names}, detail=detail)


def _audit_filters(query: AuditQuery, dialect: Dialect) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    for column, values in (
        (audit_log.c.actor, query.actors),
        (audit_log.c.action, query.actions),
        (audit_log.c.outcome, query.outcomes),
    ):
        if values:
            where.append(column.in_(values))
    if query.since is not None:
        where.append(audit_log.c.at >= query.since)
    if query.until is not None:
        where.append(audit_log.c.at < query.until)
    if query.search:
        where.append(folded_contains(audit_log.c.target, query.search, dialect))
    return where
