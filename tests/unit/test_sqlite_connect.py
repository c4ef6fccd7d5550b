"""SQLite: a process opening a new database file while another one writes it still opens it.

Switching a file to WAL needs it to itself: SQLite answers "database is locked" at
once to a connection that tries while another one writes the file in rollback mode
(its busy handler is skipped, as waiting could deadlock). Seen as a failed migration
when several processes started together on a new file.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from jobyard.clock import utcnow
from jobyard.store import Store
from jobyard.store.engine import make_engine, normalize_url

HOLD = 0.3  # seconds the other writer keeps its transaction open (the scenario, not a wait)


def test_a_connection_opened_while_the_file_is_written_in_rollback_mode_waits(
    tmp_path: Path,
) -> None:
    """Another connection writes the new file before it is in WAL (the moment a
    concurrent first opener is in): the switch waits for its commit, and succeeds."""
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE t (x INTEGER)")
    committed = threading.Timer(HOLD, lambda: other.execute("COMMIT"))
    committed.start()
    engine = make_engine(normalize_url(f"sqlite:///{path}"))
    try:
        with engine.begin() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    finally:
        committed.join()
        engine.dispose()
        other.close()


def test_a_read_of_one_statement_sends_no_begin_and_a_read_of_several_does(
    tmp_path: Path,
) -> None:
    """SQLite runs a lone statement in a transaction of its own; a read of several
    needs one around them (one snapshot), and a write takes the lock up front. What
    SQLite ran is traced on each connection lent (BEGIN goes to the driver's own
    cursor, not through SQLAlchemy's execution, which would then count it)."""
    store = Store(f"sqlite:///{tmp_path / 'reads.db'}")
    store.migrate()
    sent: list[str] = []

    def trace(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.set_trace_callback(sent.append)

    event.listen(store.engine, "checkout", trace)
    try:
        assert store.access.user("nobody") is None  # every request's credential read
        assert store.jobs.get_job(1) is None
        one = list(sent)
        sent.clear()
        store.access.list_users()  # a read of one statement, not marked as one: BEGIN
        listed = list(sent)
        sent.clear()
        store.queue.set_queue_paused("q", True, utcnow())
        written = list(sent)
    finally:
        store.close()
    assert len(one) == 2, one
    assert not any(statement.startswith(("BEGIN", "COMMIT")) for statement in one)
    assert listed[0] == "BEGIN"
    assert written[0] == "BEGIN IMMEDIATE"


@pytest.mark.parametrize(
    ("query", "level"),
    [("", 1), ("?synchronous=normal", 1), ("?synchronous=full", 2), ("?synchronous=FULL", 2)],
)
def test_the_url_says_whether_each_commit_is_synced(tmp_path: Path, query: str, level: int) -> None:
    """``synchronous``: NORMAL (1) syncs the WAL at checkpoints only, FULL (2) at each commit."""
    engine = make_engine(normalize_url(f"sqlite:///{tmp_path / 'synced.db'}{query}"))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar() == level
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        engine.dispose()
    # The parameter is the engine's, not the driver's: SQLAlchemy warns of one it ignores,
    # and a warning fails the test.
    assert {path.name for path in tmp_path.iterdir()} <= {
        "synced.db",
        "synced.db-wal",
        "synced.db-shm",
    }


@pytest.mark.parametrize("query", ["?synchronous=off", "?synchronous=full&synchronous=normal"])
def test_a_synchronous_setting_sqlite_would_not_keep_safe_is_refused(
    tmp_path: Path, query: str
) -> None:
    with pytest.raises(ValueError, match="synchronous must be normal or full"):
        make_engine(normalize_url(f"sqlite:///{tmp_path / 'x.db'}{query}"))


def test_the_store_listens_to_no_event_of_its_connections(tmp_path: Path) -> None:
    """One connection event (a ``begin`` listener, say) makes SQLAlchemy dispatch events
    around every statement of its engine: a third of a one-statement read's time
    (bench/RESULTS.md). SQLite's BEGIN comes from the dialect's own hook instead."""
    store = Store(f"sqlite:///{tmp_path / 'quiet.db'}")
    try:
        store.migrate()
        with store.jobs._write() as conn:
            assert not conn._has_events
        assert not store.engine._has_events
    finally:
        store.close()


def test_a_ping_answers_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    """``/readyz`` asks ``Store.ping``: a long write of another process (a prune, a large
    batch) must not make a node look down. The ping takes no lock; with ``BEGIN
    IMMEDIATE`` it waited for the writer, up to the busy timeout (30 s), then failed."""
    path = tmp_path / "ping.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    pinged = threading.Event()
    thread = threading.Thread(target=lambda: (store.ping(), pinged.set()), daemon=True)
    try:
        thread.start()
        answered = pinged.wait(timeout=10)  # a deadline, not a pause: set as soon as it returns
    finally:
        other.execute("ROLLBACK")
        thread.join()
        other.close()
        store.close()
    assert answered, "the ping waited for the other process's write lock"
