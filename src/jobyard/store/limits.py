"""The ``limits`` table: ``max_running`` per queue and per job type, for every process.

Rows exist for limited scopes only. ``source`` says who wrote a row: ``config``
(written from ``jobyard.yaml`` when a process with it starts) or ``api`` (a job
type stored through the API). Writes only touch rows that change, so processes
starting with the same file do not contend with the claims that lock these rows.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, false, or_, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from jobyard.limits import Key, Limit, Scope
from jobyard.store.part import Part
from jobyard.store.tables import limits

CONFIG = "config"
API = "api"


class SqlLimits(Part):
    """:class:`~jobyard.store.protocol.LimitStore` on SQL."""

    def read(self) -> dict[Key, int]:
        """Every stored ``max_running`` limit by (scope, name)."""
        with self._read() as conn:
            return read(conn)

    def sync_limits(self, wanted: Sequence[Limit], owned: Collection[Key], now: datetime) -> bool:
        """Make the configuration's limits the stored ones (see :func:`sync`)."""
        with self._write() as conn:
            return sync(conn, wanted, owned, now)

    def set_limit(self, key: Key, max_running: int | None, now: datetime) -> None:
        """Set or (with None) remove the limit of a job type stored through the API."""
        with self._write() as conn:
            put(conn, key, max_running, now)


def read(conn: Connection) -> dict[Key, int]:
    """Every limit, by (scope, name)."""
    query = select(limits.c.scope, limits.c.name, limits.c.max_running)
    return {(Scope(scope), name): int(n) for scope, name, n in conn.execute(query)}


def sync(conn: Connection, wanted: Sequence[Limit], owned: Collection[Key], now: datetime) -> bool:
    """Make the configuration's limits the stored ones; True when something changed.

    ``owned`` are the scopes the configuration defines, limited or not: a row for
    one of them that the file no longer limits goes, whoever wrote it (a type of the
    file shadows a stored type of the same name), and so does any ``config`` row
    the file no longer mentions.
    """
    current = {
        (Scope(scope), name): (int(n), source)
        for scope, name, n, source in conn.execute(
            select(limits.c.scope, limits.c.name, limits.c.max_running, limits.c.source)
        )
    }
    want = {limit.key: limit.max_running for limit in wanted}
    stale = [
        key
        for key, (_, source) in current.items()
        if key not in want and (key in owned or source == CONFIG)
    ]
    rows = [_row(key, n, CONFIG, now) for key, n in want.items() if current.get(key) != (n, CONFIG)]
    if stale:
        conn.execute(delete(limits).where(matching(stale)))
    if rows:
        conn.execute(_upsert(conn.dialect.name), rows)
    return bool(stale or rows)


def put(conn: Connection, key: Key, max_running: int | None, now: datetime) -> None:
    """Set (or with None remove) the limit of a stored job type's scope."""
    if max_running is None:
        conn.execute(delete(limits).where(matching([key])))
    else:
        conn.execute(_upsert(conn.dialect.name), [_row(key, max_running, API, now)])


def matching(keys: Collection[Key]) -> ColumnElement[bool]:
    """A condition on ``limits`` rows: one of ``keys``."""
    if not keys:
        return false()
    return or_(
        *(and_(limits.c.scope == scope.value, limits.c.name == name) for scope, name in keys)
    )


def _row(key: Key, max_running: int, source: str, now: datetime) -> dict[str, Any]:
    scope, name = key
    return {
        "scope": scope.value,
        "name": name,
        "max_running": max_running,
        "source": source,
        "updated_at": now,
    }


def _upsert(dialect: str) -> Insert:
    """INSERT … or update the row with the same key (processes start concurrently)."""
    if dialect == "mysql":
        mine = mysql.insert(limits)
        upsert: Insert = mine.on_duplicate_key_update(
            max_running=mine.inserted.max_running,
            source=mine.inserted.source,
            updated_at=mine.inserted.updated_at,
        )
        return upsert
    other = (postgresql if dialect == "postgresql" else sqlite).insert(limits)
    upsert = other.on_conflict_do_update(
        index_elements=[limits.c.scope, limits.c.name],
        set_={
            "max_running": other.excluded.max_running,
            "source": other.excluded.source,
            "updated_at": other.excluded.updated_at,
        },
    )
    return upsert
