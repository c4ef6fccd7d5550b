"""What every part of the SQL store shares: its engines, transactions and an upsert."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, Engine, Table, insert, update
from sqlalchemy.exc import IntegrityError

from jobyard.store.engine import SQLITE_BEGIN

RETRIES = 3  # attempts of a transaction that lost a race on a unique key


@contextmanager
def _sqlite_begun(engine: Engine, begin: str | None) -> Iterator[Connection]:
    """A SQLite transaction that begins with ``begin`` (None: no statement at all)."""
    with engine.connect() as conn:
        info = conn.connection.info
        info[SQLITE_BEGIN] = begin  # read (and taken) by the dialect's do_begin
        try:
            transaction = conn.begin()
        finally:  # a begin that failed before reading it leaves no key to the next one
            info.pop(SQLITE_BEGIN, None)
        with transaction:
            yield conn


@contextmanager
def _autocommit(engine: Engine) -> Iterator[Connection]:
    """A PostgreSQL connection in autocommit for one statement, a transaction of its own.

    psycopg sends ``BEGIN`` and ``COMMIT`` as round trips of their own: without them a
    credential check or a job's ``GET`` reads about a quarter faster (~110 µs a read here).
    The switch is the driver's own attribute, set and reset in this process: SQLAlchemy's
    ``isolation_level`` option (a setting read and reset at each checkout) and engine
    events (which every other transaction of the process would pay for) cost more than
    the round trips save.
    """
    with engine.connect() as conn:
        dbapi: Any = conn.connection.dbapi_connection
        dbapi.autocommit = True
        try:
            yield conn  # SQLAlchemy's commit or rollback then has no transaction to end
        finally:
            if not dbapi.closed:
                try:
                    dbapi.autocommit = False
                except Exception:  # not idle: never lend it on in autocommit
                    conn.invalidate()


def peek(engine: Engine) -> AbstractContextManager[Connection]:
    """A read of one statement, for one statement only: SQLite and PostgreSQL send no
    ``BEGIN`` (on SQLite it takes no write lock, so it never waits behind a writer)."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        return _sqlite_begun(engine, None)
    if dialect == "postgresql":
        return _autocommit(engine)
    return engine.begin()


class Writer(Protocol):
    def begin(self) -> AbstractContextManager[Connection]:
        """A transaction that may write."""
        ...


class Part:
    """One group of the store's verbs over the engine (and writer) the :class:`Store` shares."""

    def __init__(self, engine: Engine, writer: Writer | None = None) -> None:
        self._engine = engine
        self._writer = writer if writer is not None else engine
        self._dialect = engine.dialect.name

    def _write(self) -> AbstractContextManager[Connection]:
        """A transaction that may write (on SQLite it takes the write lock at once)."""
        return self._writer.begin()

    def _read(self) -> AbstractContextManager[Connection]:
        """A transaction that only reads (on SQLite it takes no lock: readers never wait)."""
        if self._dialect == "sqlite":
            return _sqlite_begun(self._engine, "BEGIN")
        return self._engine.begin()

    def _peek(self) -> AbstractContextManager[Connection]:
        """A read of one statement (SQLite and PostgreSQL send no BEGIN): only for one."""
        return peek(self._engine)

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


class SoleWriter:
    """SQLite: the writes of this process take turns on one connection of their own.

    SQLite has one write lock per database. The writers of a process queue on a
    lock here, handed over at once, instead of polling for the database's lock on
    its busy timeout. And they all write through one connection: in WAL mode a
    connection drops its whole page cache when another connection wrote since its
    last transaction, so writes spread over the pool each began cold and read their
    pages again; this one's stays warm while no other process writes.

    A write begun while the same thread's write is open would wait for itself (on
    another connection, for the busy timeout): it is refused at once instead. The
    connection is never given back to the pool, so nothing else resets it: a write
    that failed and left SQLite in a transaction (a failed COMMIT can) discards
    the connection, and the transaction with it. Do not set execution options on
    the connection a write is given: they would stay for every later write.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.RLock()
        self._conn: Connection | None = None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self._lock:
            conn = self._conn
            if conn is not None and conn.in_transaction():
                raise RuntimeError("a SQLite write begun inside another write of the same thread")
            if conn is None or conn.closed or conn.invalidated:
                if conn is not None:
                    conn.close()
                conn = self._conn = self._engine.connect()
            try:
                with conn.begin():
                    yield conn
            except BaseException:
                if _left_open(conn):
                    conn.invalidate()
                raise

    def close(self) -> None:
        """Give the connection back (the next write takes one again)."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()


def _left_open(conn: Connection) -> bool:
    """Whether SQLite still holds a transaction that SQLAlchemy no longer sees."""
    try:
        return bool(conn.connection.dbapi_connection.in_transaction)  # type: ignore[union-attr]
    except Exception:  # closed or invalidated already: nothing is left open
        return False
