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

from sqlalchemy import text

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
