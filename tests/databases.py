"""The database servers the tests run on: probed once, scratch databases made and dropped.

SQLite needs no server; PostgreSQL and MariaDB are found at the ``JOBYARD_TEST_*_URL``
admin URLs (local defaults). A server that does not answer skips its cases, or fails
them when ``JOBYARD_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from uuid import uuid4

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from jobyard.store import Store
from jobyard.store.engine import normalize_url
from jobyard.store.tables import metadata

ADMIN_URLS = {
    "postgres": ("JOBYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    "mariadb": ("JOBYARD_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
}
BACKENDS = [
    pytest.param("sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


class Servers:
    """The database servers of this session, each checked once, created on first use."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._admin: dict[str, str | Exception] = {}
        self._migrated: dict[str, str] = {}

    def admin_url(self, backend: str) -> str:
        """The server's admin URL; skips the test (or fails it) when the server is down."""
        if backend not in self._admin:
            self._admin[backend] = _probe(backend)
        found = self._admin[backend]
        if isinstance(found, Exception):
            reason = f"{backend} server does not answer: {found}"
            if os.environ.get("JOBYARD_REQUIRE_SERVICES") == "1":
                pytest.fail(reason)
            pytest.skip(reason)
        return found

    def scratch_database(self, backend: str) -> AbstractContextManager[str]:
        """A new empty database, dropped at the end of ``with``; yields its URL."""
        return _scratch_database(self.admin_url(backend))

    def migrated_url(self, backend: str) -> str:
        """The session's migrated database on ``backend``, emptied of all rows."""
        if backend not in self._migrated:
            url = self._stack.enter_context(self.scratch_database(backend))
            run_on(url, Store.migrate)
            self._migrated[backend] = url
        run_on(self._migrated[backend], delete_all_rows)
        return self._migrated[backend]

    @contextmanager
    def private_database(self, backend: str) -> Iterator[str]:
        """A new migrated database that no other test empties, dropped at the end of ``with``.

        For a server that lives across tests: the session's database is emptied
        before each test that asks for ``database_url``.
        """
        with self.scratch_database(backend) as url:
            run_on(url, Store.migrate)
            yield url


def _probe(backend: str) -> str | Exception:
    variable, default = ADMIN_URLS[backend]
    url = os.environ.get(variable, default)
    engine = create_engine(normalize_url(url), connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return url
    except OperationalError as error:
        where = make_url(url).render_as_string(hide_password=True)
        return ConnectionError(f"{where}: {str(error.orig).splitlines()[0]}")
    finally:
        engine.dispose()


@contextmanager
def _scratch_database(admin_url: str) -> Iterator[str]:
    server = normalize_url(admin_url)
    name = f"jobyard_test_{os.getpid()}_{uuid4().hex[:8]}"
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    postgres = server.get_backend_name() == "postgresql"
    create = f"CREATE DATABASE {name}" + ("" if postgres else " CHARACTER SET utf8mb4")
    try:
        with engine.connect() as conn:
            conn.execute(text(create))
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            force = " WITH (FORCE)" if postgres else ""
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))
        engine.dispose()


def run_on(url: str, action: Callable[[Store], None]) -> None:
    store = Store(url)
    try:
        action(store)
    finally:
        store.close()


def delete_all_rows(store: Store) -> None:
    with store.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


def lock_waits(store: Store, statement_end: str) -> int:
    """On PostgreSQL, how many sessions of the store's database wait for a lock; asked on a
    new connection each time (PostgreSQL shows one transaction the same
    ``pg_stat_activity`` throughout).

    On MariaDB, how many statements ending in ``statement_end`` (``FOR UPDATE``,
    ``LOCK IN SHARE MODE``) other sessions have under way, waiting or not: InnoDB's own
    view of lock waits (``innodb_trx``) lags, and does not always show a wait at all.
    A test that waits for one must hold what the statement needs, so that under way
    soon means waiting.
    """
    if store.dialect == "postgresql":
        query = text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
    else:
        query = text(
            "SELECT count(*) FROM information_schema.processlist WHERE command = 'Query'"
            " AND db = database() AND info LIKE :pattern AND id <> connection_id()"
        ).bindparams(pattern=f"%{statement_end}")
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
