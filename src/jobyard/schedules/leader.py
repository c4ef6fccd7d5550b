"""Scheduler leadership: one process at a time fires schedules.

PostgreSQL: a session-level advisory lock; MariaDB/MySQL: ``GET_LOCK``, named after
the database (its locks are the whole server's). The lock
lives as long as the connection that took it, so when the leader dies the
database frees it and another scheduler takes over at its next pass. A leader that
goes silent instead (its link cut, its process frozen, a proxy between that keeps the
connection open) would keep it as long as the server keeps an idle session, hours:
the leader's session is ended by the server once idle for ``IDLE_LIMIT`` seconds
(``idle_session_timeout``; ``wait_timeout``), and a leader checks its lead at every
pass, twice a second. SQLite is
one machine's file: every scheduler on it may lead (fires stay unique through
``schedule_fires``).
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text

from jobyard.store import Store
from jobyard.store.engine import user_lock_name

log = logging.getLogger(__name__)

LOCK_KEY = 0x6A6F6273  # any constant shared by every process of the deployment
LOCK_NAME = "jobyard_scheduler"  # and the database's name
# Seconds a silent leader's session, and lead, outlive its last check. A leader checks
# at the start of each pass: a pass longer than this (catching up many fires, a slow
# database) would lose the lead it still uses, so it is well above any pass.
IDLE_LIMIT = 60


class Leadership:
    def __init__(self, store: Store, idle_limit: int = IDLE_LIMIT) -> None:
        self.store = store
        self.idle_limit = idle_limit
        self._conn: Connection | None = None

    def held(self) -> bool:
        """Whether this process leads now; tries to take the lead when it does not."""
        if self.store.dialect == "sqlite":
            return True
        if self._conn is not None and self._alive(self._conn):
            return True
        self.release()
        return self._acquire()

    def release(self) -> None:
        if self._conn is not None:
            try:
                # Not back to the pool: the session ends, and the lock (and the idle
                # limit) with it.
                self._conn.invalidate()
                self._conn.close()
            except Exception:
                log.debug("closing the leader connection failed", exc_info=True)
            self._conn = None

    def _acquire(self) -> bool:
        conn = self.store.engine.connect()
        try:
            if self.store.dialect == "postgresql":
                statement = text("SELECT pg_try_advisory_lock(:key)").bindparams(key=LOCK_KEY)
            else:
                name = user_lock_name(LOCK_NAME, self.store.engine.url.database)
                statement = text("SELECT GET_LOCK(:name, 0)").bindparams(name=name)
            got = bool(conn.execute(statement).scalar())
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._limit_idle(conn)
        self._conn = conn
        log.info("this scheduler leads")
        return True

    def _limit_idle(self, conn: Connection) -> None:
        """Have the server end the session (and free the lock) once idle that long."""
        if self.store.dialect == "postgresql":
            statement = f"SET idle_session_timeout = {self.idle_limit * 1000}"
        else:
            statement = f"SET SESSION wait_timeout = {self.idle_limit}"
        try:
            conn.execute(text(statement))
            conn.commit()
        except Exception:  # PostgreSQL before 14 has no such setting
            conn.rollback()
            log.warning("the scheduler's lead has no idle limit on this server", exc_info=True)

    @staticmethod
    def _alive(conn: Connection) -> bool:
        try:
            conn.execute(text("SELECT 1"))
            conn.commit()
            return True
        except Exception:
            log.warning("lost the scheduler lead: its connection broke")
            return False
