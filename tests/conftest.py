"""Databases for tests: the same clean, migrated schema on SQLite, PostgreSQL and MariaDB.

``database_url`` runs a test once per backend; ``store`` runs a store contract
case once on the in-memory store and once per backend (a case marked
``sql_only`` skips the memory store, saying why). Each server gets one database
per session, migrated once and emptied before every test; SQLite copies a
migrated template file. A server that does not answer skips its cases, or fails
them when ``JOBYARD_REQUIRE_SERVICES=1`` (:mod:`tests.databases`). ``launch``
starts private ``jobyard serve`` processes (:mod:`tests.harness`);
``private_postgres`` a PostgreSQL server to stop and start (:mod:`tests.pgprivate`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from jobyard.store import Store
from jobyard.store.memory import MemoryStore
from tests.databases import BACKENDS, Servers, run_on
from tests.harness import ADMIN, Launcher
from tests.pgprivate import PrivatePostgres, private_postgres_server

# Every server the tests start creates this admin on its empty database, and every
# client (the Python client, the CLI in a subprocess) acts as it unless a test says
# otherwise: the tests of access control pass other credentials explicitly.
os.environ["JOBYARD_USER"], os.environ["JOBYARD_PASSWORD"] = ADMIN


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    with ExitStack() as stack:
        yield Servers(stack)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "jobyard.db"
    run_on(f"sqlite:///{path}", Store.migrate)
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


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    """Starts private servers for this test: ``launch(database_url, env=...)``; stops them after."""
    launcher = Launcher(tmp_path)
    yield launcher
    launcher.stop_all()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this test's own, which it may stop and start."""
    with private_postgres_server() as server:
        yield server
