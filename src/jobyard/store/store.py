"""The SQL store: one database (SQLite, PostgreSQL or MariaDB/MySQL) in parts by concern.

Each part is one of the protocols of :mod:`jobyard.store.protocol` (or, for
schedules, the event feed and monitoring, SQL only). Every method is one short
transaction and returns domain objects (:mod:`jobyard.models`), never rows.
Times are passed in (``now``), never read from the clock here, so callers and
tests control time.
"""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from jobyard.store import migrate
from jobyard.store.access import SqlAccess
from jobyard.store.dependencies import SqlDependencies
from jobyard.store.engine import make_engine, normalize_url
from jobyard.store.eventlog import SqlEventLog
from jobyard.store.job_types import SqlJobTypes
from jobyard.store.jobs import SqlJobs
from jobyard.store.limits import SqlLimits
from jobyard.store.monitor import MonitorStore
from jobyard.store.part import SoleWriter, peek
from jobyard.store.queue import SqlQueue
from jobyard.store.retention import SqlRetention
from jobyard.store.runs import SqlRuns
from jobyard.store.schedule_rows import SqlSchedules
from jobyard.store.workers import SqlWorkers


class StoreError(Exception):
    """A storage failure the caller can report (e.g. a duplicate name)."""


class Store:
    """One database behind domain verbs, grouped: ``store.jobs.get_job(…)``.

    A :class:`~jobyard.store.protocol.Storage`, like the in-memory store.
    """

    def __init__(self, url: str) -> None:
        """Connect lazily to ``url``; bare ``postgresql://``/``mysql://`` URLs get a driver."""
        self._engine = engine = make_engine(normalize_url(url))
        self._sole = SoleWriter(engine) if engine.dialect.name == "sqlite" else None
        parts = (engine, self._sole)
        self.jobs = SqlJobs(*parts)
        self.queue = SqlQueue(*parts)
        self.deps = SqlDependencies(*parts)
        self.runs = SqlRuns(*parts)
        self.workers = SqlWorkers(*parts)
        self.job_types = SqlJobTypes(*parts)
        self.limits = SqlLimits(*parts)
        self.schedules = SqlSchedules(*parts)
        self.events = SqlEventLog(*parts)
        self.monitor = MonitorStore(*parts)
        self.access = SqlAccess(*parts)
        self.retention = SqlRetention(*parts)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for dialect-specific extras such as LISTEN/NOTIFY)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite``, ``postgresql`` or ``mysql`` (MariaDB included)."""
        return self._engine.dialect.name

    def ping(self) -> None:
        """Ask the database a trivial question; raises when it does not answer. A pooled
        connection the server closed meanwhile is replaced once (the pool does not check
        connections before it lends them). On SQLite it takes no write lock: it answers
        while another process writes."""
        for last in (False, True):
            try:
                with peek(self._engine) as conn:
                    conn.execute(text("SELECT 1"))
                return
            except DBAPIError as exc:
                if last or not exc.connection_invalidated:
                    raise

    def migrate(self) -> str | None:
        """Create or upgrade the schema; safe to run from several processes at once. The
        revision it found (None: there was no schema)."""
        return migrate.upgrade(self._engine)

    def close(self) -> None:
        """Close every pooled connection (and SQLite's writing one, once its write is done)."""
        if self._sole is not None:
            self._sole.close()
        self._engine.dispose()
