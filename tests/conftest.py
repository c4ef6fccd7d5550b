"""Databases for tests: the same clean, migrated schema on SQLite, PostgreSQL and MariaDB.

``database_url`` runs a test once per backend; ``store`` runs a store contract
case once on the in-memory store and once per backend (a case marked
``sql_only`` skips the memory store, saying why). Each server gets one database
per session, migrated once and emptied before every test; SQLite copies a
migrated template file. A server that does not answer skips its cases, or fails
them when ``JOBYARD_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from jobyard.store import Store
from jobyard.store.engine import normalize_url
from jobyard.store.memory import MemoryStore
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
            _run_on(url, Store.migrate)
            self._migrated[backend] = url
        _run_on(self._migrated[backend], _delete_all_rows)
        return self._migrated[backend]


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


def _run_on(url: str, action: Callable[[Store], None]) -> None:
    store = Store(url)
    try:
        action(store)
    finally:
        store.close()


def _delete_all_rows(store: Store) -> None:
    with store.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    with ExitStack() as stack:
        yield Servers(stack)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "jobyard.db"
    _run_on(f"sqlite:///{path}", Store.migrate)
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database of this test alone."""
    path = tmp_path / "jobyard.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, servers: Servers) -> str:
    """A clean, migrated database on each backend in turn (for subprocesses too)."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url
    return servers.migrated_url(request.param)


@pytest.fixture(params=BACKENDS)
def empty_database_url(
    request: pytest.FixtureRequest, servers: Servers, tmp_path: Path
) -> Iterator[str]:
    """A new database without any table on each backend in turn, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with servers.scratch_database(request.param) as url:
        yield url


@pytest.fixture(params=[pytest.param("memory"), *BACKENDS])
def store(request: pytest.FixtureRequest, servers: Servers) -> Iterator[Store | MemoryStore]:
    """The in-memory store, then a :class:`Store` on a clean database of each backend."""
    if request.param == "memory":
        if marker := request.node.get_closest_marker("sql_only"):
            pytest.skip(f"SQL only: {marker.args[0]}")
        yield MemoryStore()
        return
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
    else:
        url = servers.migrated_url(request.param)
    store = Store(url)
    yield store
    store.close()
