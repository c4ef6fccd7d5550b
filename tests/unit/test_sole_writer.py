"""SQLite: the writes of a process take turns on one connection of their own.

In WAL mode a connection drops its page cache when another connection wrote since
its last transaction; writes handed pooled connections in turn each began cold.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import IntegrityError, OperationalError

from jobyard.clock import utcnow
from jobyard.models import JobSpec, NewJob
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.engine import make_engine, normalize_url
from jobyard.store.part import SoleWriter

THREADS = 4
WRITES = 25  # per thread


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(normalize_url(f"sqlite:///{tmp_path / 'w.db'}"))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    yield engine
    engine.dispose()


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())


def test_the_store_writes_on_one_connection_while_reads_take_others(tmp_path: Path) -> None:
    """A read holding a pooled connection while jobs are added makes the pool hand out
    another; the writes still all go through one connection."""
    store = Store(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.migrate()
    used: set[int] = set()

    @event.listens_for(store.engine, "before_cursor_execute")
    def seen(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO jobs"):
            used.add(id(conn.connection.dbapi_connection))

    new = NewJob("noop", {}, JobSpec(python="m:f"), "default", 0, JobState.QUEUED)
    try:
        store.jobs.add_jobs([new], utcnow())
        with store.jobs._read() as reading:  # the pool's idle connection, held
            reading.execute(text("SELECT count(*) FROM jobs")).scalar_one()
            store.jobs.add_jobs([new], utcnow())
        store.jobs.add_jobs([new], utcnow())
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 3
        assert len(used) == 1
    finally:
        store.close()


def test_an_in_memory_database_still_works(tmp_path: Path) -> None:
    """``sqlite://`` gets SQLAlchemy's per-thread pool, which takes no LIFO option."""
    store = Store("sqlite://")
    try:
        store.migrate()
        new = NewJob("noop", {}, JobSpec(python="m:f"), "default", 0, JobState.QUEUED)
        [(job, created)] = store.jobs.add_jobs([new], utcnow())
        assert created
        found = store.jobs.get_job(job.id)
        assert found is not None
        assert found.state is JobState.QUEUED
    finally:
        store.close()


def test_writers_of_several_threads_take_turns_and_all_commit(engine: Engine) -> None:
    """None waits out the busy timeout nor fails with "database is locked"."""
    writer = SoleWriter(engine)

    def write() -> None:
        for _ in range(WRITES):
            with writer.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (1)"))

    threads = [threading.Thread(target=write) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    writer.close()
    assert _count(engine) == THREADS * WRITES


def test_a_failed_write_is_rolled_back_and_the_next_one_commits(engine: Engine) -> None:
    writer = SoleWriter(engine)

    def fails() -> None:
        with writer.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fails()
    with writer.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
    writer.close()
    with engine.connect() as conn:
        assert list(conn.execute(text("SELECT x FROM t")).scalars()) == [2]


def test_a_write_inside_a_write_of_the_same_thread_is_refused_at_once(engine: Engine) -> None:
    """On another connection it would wait for the outer one's lock (the busy timeout)."""
    writer = SoleWriter(engine)
    with writer.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(RuntimeError, match="inside another write"), writer.begin():
            pass
    writer.close()
    assert _count(engine) == 1  # the outer write went on and committed


def test_after_close_the_next_write_takes_a_connection_again(engine: Engine) -> None:
    writer = SoleWriter(engine)
    with writer.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    writer.close()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    with writer.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
    assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    writer.close()
    assert _count(engine) == 2


def test_a_commit_that_fails_and_leaves_sqlite_in_a_transaction_discards_the_connection(
    engine: Engine, tmp_path: Path
) -> None:
    """A deferred foreign key fails at COMMIT, and SQLite keeps the transaction open.
    Left so, the connection would hold the database's write lock until its next use."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(
            text(
                "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) "
                "DEFERRABLE INITIALLY DEFERRED)"
            )
        )
    writer = SoleWriter(engine)

    def orphan() -> None:
        with writer.begin() as conn:
            conn.execute(text("INSERT INTO child VALUES (1)"))

    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        orphan()
    other = sqlite3.connect(tmp_path / "w.db", timeout=0)  # no busy wait: locked fails now
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()
    with writer.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    writer.close()
    assert _count(engine) == 1


def test_an_invalidated_connection_is_replaced(engine: Engine) -> None:
    writer = SoleWriter(engine)
    with writer.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        first = conn
    first.invalidate()
    with writer.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
        assert conn is not first
    writer.close()
    assert _count(engine) == 2


def test_a_write_that_found_the_database_locked_leaves_the_next_one_free(
    engine: Engine, tmp_path: Path
) -> None:
    """Another process holds the write lock past the busy timeout: that write fails,
    and the next one (the lock released) commits on the same connection."""
    writer = SoleWriter(engine)
    with writer.begin() as conn:
        conn.execute(text("PRAGMA busy_timeout = 50"))  # this connection's, from now on
        first = conn
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"), writer.begin():
            pass
    finally:
        other.execute("ROLLBACK")
        other.close()
    with writer.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert conn is first
    writer.close()
    assert _count(engine) == 1
