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
    needs one around them (one snapshot), and a write takes the lock up front."""
    store = Store(f"sqlite:///{tmp_path / 'reads.db'}")
    store.migrate()
    sent: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
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
    assert len(one) == 2
    assert not any(statement.startswith("BEGIN") for statement in one)
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
