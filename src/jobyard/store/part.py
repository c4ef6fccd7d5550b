"""What every part of the SQL store shares: its engines, transactions and an upsert."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Table, insert, update
from sqlalchemy.exc import IntegrityError

RETRIES = 3  # attempts of a transaction that lost a race on a unique key


class Part:
    """One group of the store's verbs over the engines the :class:`Store` shares."""

    def __init__(
        self, engine: Engine, reader: Engine, writing: AbstractContextManager[Any] | None = None
    ) -> None:
        self._engine = engine
        self._reader = reader
        self._writing = writing if writing is not None else nullcontext()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A transaction that may write (on SQLite it takes the write lock at once).

        Writers of one process take turns on ``writing`` first (a lock, on SQLite):
        they queue in the process, handed over at once, instead of polling for the
        database's lock on its busy timeout.
        """
        with self._writing, self._engine.begin() as conn:
            yield conn

    def _read(self) -> AbstractContextManager[Connection]:
        """A transaction that only reads."""
        return self._reader.begin()

    def _upsert(
        self,
        table: Table,
        key: ColumnElement[bool],
        values: dict[str, Any],
        key_values: dict[str, Any],
    ) -> bool:
        """Update the row matching ``key`` or insert one; True when inserted."""
        for attempt in range(RETRIES):
            try:
                with self._write() as conn:
                    if conn.execute(update(table).where(key).values(values)).rowcount:
                        return False
                    conn.execute(insert(table).values(key_values | values))
                    return True
            except IntegrityError:
                # Another process inserted the same key first: update it instead.
                if attempt == RETRIES - 1:
                    raise
        raise AssertionError("unreachable")


def writer_lock(engine: Engine) -> AbstractContextManager[Any] | None:
    """What the writers of one process share: SQLite has one write lock per database."""
    return threading.RLock() if engine.dialect.name == "sqlite" else None
