"""The commands that work on the database itself: their options, settings and configuration.

``serve``, ``worker``, ``migrate`` and ``user`` read the same flags and
variables; a bad value is one line and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobyard.cli.common import fail

if TYPE_CHECKING:
    from jobyard.config import Config
    from jobyard.settings import Settings
    from jobyard.store import Store

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="JOBYARD_CONFIG", help="jobyard.yaml with job types"),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="JOBYARD_DATABASE_URL",
        help="sqlite:///./jobyard.db (default), postgresql://…, mysql://…",
    ),
]


def read_settings(overrides: dict[str, Any], *, admin: bool = False) -> Settings:
    """The settings: flags over variables over defaults.

    For the commands that need no job configuration (``migrate``, ``backup``,
    ``user``): they neither read the file nor import its parser, and start faster.
    Only a server (``admin``) makes the first admin: the others leave
    ``JOBYARD_ADMIN_PASSWORD`` alone, whatever it holds.
    """
    from pydantic import ValidationError

    from jobyard.settings import ENV_PREFIX, Settings

    given = {k: v for k, v in overrides.items() if v is not None}
    if not admin:
        given["admin_password"] = ""  # unset: a bad one is the server's to refuse
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            # Named as the user may have written it: its variable, and its option if it has one
            # (an option's value may have come from its variable: typer reads both).
            variable = f"{ENV_PREFIX}{field.upper()}"
            option = _OPTIONS.get(field, f"--{field.replace('_', '-')}")
            said = f"{option} / {variable}" if field in given else variable
            problems.append(f"{said}: {error['msg'].removeprefix('Value error, ')}")
        fail("; ".join(problems))


_OPTIONS = {"worker_name": "--name"}  # the settings whose option is not named after them
DATABASE = "--database-url / JOBYARD_DATABASE_URL"
# Query parameters of a database URL that carry a secret (libpq's and the MySQL drivers').
SECRET_QUERY_KEYS = ("password", "passwd", "sslpassword")


def check_database(url: str, code: int = 1) -> None:
    """Fail in one line (exit ``code``) when the database of ``url`` cannot be opened."""
    open_database(url, code).close()


def missing_sqlite_file(url: str) -> Path | None:
    """The file a SQLite ``url`` names, when it is not there (None for any other URL)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("uri"):
        return None
    if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


def open_database(url: str, code: int = 1) -> Store:
    """The store of ``url``, connected to once; fail in one line (exit ``code``) when it
    cannot be opened.

    A store connects when first used, deep in a migration or a worker's start, where
    its error is a traceback: so connect once here, before anything starts.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError, NoSuchModuleError

    from jobyard.store import Store

    parsed = make_url(url)
    hidden = {key: "***" for key in SECRET_QUERY_KEYS if key in parsed.query}
    shown = parsed.update_query_dict(hidden).render_as_string(hide_password=True)
    shown = shown.replace("%2A%2A%2A", "***")
    try:
        store = Store(url)
    except (NoSuchModuleError, ImportError) as exc:  # postgresql+nosuch://, mysql+mysqldb://
        fail(f"{DATABASE}: no driver for {shown}: {exc}")
    except (ValueError, TypeError) as exc:  # an option the driver cannot read: ?timeout=abc
        fail(f"{DATABASE}: cannot use {shown}: {_first_line(exc)}")
    try:
        with store.engine.connect():
            pass
    except DBAPIError as exc:
        store.close()
        fail(f"{DATABASE}: cannot connect to {shown}: {_first_line(exc.orig)}", code)
    except (ValueError, TypeError) as exc:  # a driver's option it cannot read: ?timeout=abc
        store.close()
        fail(f"{DATABASE}: cannot connect to {shown}: {_first_line(exc)}", code)
    _refuse_unknown_schema(store, shown, code)
    return store


def _refuse_unknown_schema(store: Store, shown: str, code: int) -> None:
    """Fail in one line when the database's schema is of a revision this version does not
    know: a newer jobyard upgraded it (or another program's Alembic owns it)."""
    from jobyard import __version__
    from jobyard.store import migrate

    current, head, known = migrate.revisions(store.engine)
    if not known:
        store.close()
        fail(
            f"{DATABASE}: the schema of {shown} is at revision {current!r}, which jobyard "
            f"{__version__} does not know (its newest is {head!r}): a newer jobyard "
            "upgraded it; run that one",
            code,
        )


def _first_line(error: BaseException | None) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def load_settings(
    overrides: dict[str, Any], *, check_secrets: bool = True, admin: bool = False
) -> tuple[Settings, Config]:
    """The settings (flags over variables over defaults) and the configuration file's
    content; ``admin`` as :func:`read_settings` has it."""
    from jobyard.config import ConfigError, empty_config, load_config

    settings = read_settings(overrides, admin=admin)
    try:
        if settings.config:
            config = load_config(settings.config, check_secrets=check_secrets)
        else:
            config = empty_config()
    except ConfigError as exc:
        fail(str(exc))
    return settings, config
