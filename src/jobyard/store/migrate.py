"""Schema migrations: Alembic's ``upgrade head``, one process at a time."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, TextClause, text

from jobyard.store.coltypes import MYSQL
from jobyard.store.engine import user_lock_name

SCRIPT_LOCATION = Path(__file__).with_name("migrations")
_LOCK_NAME = "jobyard_migrate"
_LOCK_KEY = 0x6A6F6279  # any constant shared by every process of the deployment
_LOCK_TIMEOUT = 600  # seconds a MySQL migration waits for another one


def alembic_config(conn: Connection | None = None) -> Config:
    """An Alembic config for the packaged scripts, using ``conn`` when given."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if conn is not None:
        config.attributes["connection"] = conn
    return config


def revisions(engine: Engine) -> tuple[str | None, str, bool]:
    """The database's schema revision (None before the first migration), the newest
    this version knows, and whether it knows the database's."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    quiet = logging.getLogger("alembic.runtime.migration")  # its INFO on the context
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # setLevel: the logger's cache of levels is cleared
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        quiet.setLevel(level)
    head = scripts.get_current_head()
    assert head is not None
    known = current is None or any(rev.revision == current for rev in scripts.walk_revisions())
    return current, head, known


def upgrade(engine: Engine) -> str | None:
    """Bring the schema to the newest revision; concurrent callers wait for each other.
    The revision this call found, once its turn came (None: no schema yet)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn, _migration_lock(conn), conn.begin():
        # Read under the lock: a caller that waited finds what the other one left
        # (on MariaDB, each step of a migration is committed on its own).
        found = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(alembic_config(conn), "head")
    return found


@contextmanager
def _migration_lock(conn: Connection) -> Iterator[None]:
    statements = _lock_statements(conn.dialect.name, conn.engine.url.database)
    if statements is None:
        # SQLite needs no lock of its own: the migration's transaction begins with
        # BEGIN IMMEDIATE, which already excludes every other writer.
        yield
        return
    acquire, release = statements
    if conn.execute(acquire).scalar() == 0:  # MySQL's GET_LOCK timed out
        raise TimeoutError("another process is still migrating the database")
    conn.commit()
    try:
        yield
    finally:
        conn.execute(release)
        conn.commit()


def _lock_statements(dialect: str, database: str | None) -> tuple[TextClause, TextClause] | None:
    """Statements taking and releasing a lock held by the session, not a transaction."""
    if dialect == "postgresql":
        return (
            text("SELECT pg_advisory_lock(:key)").bindparams(key=_LOCK_KEY),
            text("SELECT pg_advisory_unlock(:key)").bindparams(key=_LOCK_KEY),
        )
    if dialect in MYSQL:
        name = user_lock_name(_LOCK_NAME, database)
        return (
            text("SELECT GET_LOCK(:name, :timeout)").bindparams(name=name, timeout=_LOCK_TIMEOUT),
            text("SELECT RELEASE_LOCK(:name)").bindparams(name=name),
        )
    return None
