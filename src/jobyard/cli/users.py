"""``jobyard user …``: users changed in the database itself, without the server.

For the first admin before a server ever started, and for recovery (a
forgotten admin password). Whoever can reach the database may do this anyway;
each change goes into the audit log as ``cli:<login name>``, from ``local``.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobyard.cli.common import UNREACHABLE, JsonOpt, counted, exit_code, fail, print_items
from jobyard.cli.credentials import PasswordStdinOpt, read_password
from jobyard.cli.settings import (
    DATABASE,
    DatabaseOpt,
    missing_sqlite_file,
    open_database,
    read_settings,
)

if TYPE_CHECKING:
    from rich.table import Table

    from jobyard.access.accounts import Accounts
    from jobyard.access.audit import Audit
    from jobyard.access.records import User
    from jobyard.access.roles import Role
    from jobyard.errors import JobyardError

PANEL = "Users (on the database)"
ROLES = ("viewer", "operator", "admin")
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The user's name.")]
RoleOpt = Annotated[str, typer.Option("--role", help="viewer, operator or admin.")]

user_app = typer.Typer(
    help="Add, list, change and remove users in the database directly "
    "(the first admin; recovery). The server need not run.",
    no_args_is_help=True,
)


@dataclass(frozen=True)
class Books:
    """The accounts and the audit log of one database, and who is at the keyboard."""

    accounts: Accounts
    audit: Audit
    actor: str

    def record(self, action: str, name: str, **detail: Any) -> None:
        self.audit.record(
            self.actor, action, f"user {name}", via="cli", address="local", detail=detail or None
        )


@user_app.command("add")
def add(
    name: NameArg,
    role: RoleOpt = "viewer",
    password_stdin: PasswordStdinOpt = False,
    database_url: DatabaseOpt = None,
) -> None:
    """Add a user; the password is asked twice (or read with --password-stdin)."""
    wanted = _role(role)
    with books(database_url, create=True) as found:
        if found.accounts.exists(name):  # said before the password is asked for nothing
            from jobyard.errors import Conflict

            raise Conflict(f"a user named {name!r} exists")
        password = read_password(password_stdin, f"Password of {name}", twice=True)
        user = found.accounts.add_user(name, wanted, password)
        found.record("add_user", name, role=user.role.value)
    typer.echo(f"user {name} added ({user.role})")


@user_app.command("list")
def list_users(database_url: DatabaseOpt = None, json_: JsonOpt = False) -> None:
    """Every user with their role."""
    with books(database_url) as found:
        users = found.accounts.users()
    print_items(users, json_, users_table)


@user_app.command("set-password")
def set_password(
    name: NameArg, password_stdin: PasswordStdinOpt = False, database_url: DatabaseOpt = None
) -> None:
    """Give a user a new password (asked twice, or read with --password-stdin)."""
    password = read_password(password_stdin, f"New password of {name}", twice=True)
    with books(database_url) as found:
        found.accounts.set_password(name, password)
        found.record("change_user", name, password="changed")
    typer.echo(f"user {name}: password changed")


@user_app.command("set-role")
def set_role(
    name: NameArg,
    role: Annotated[str, typer.Argument(metavar="ROLE", help="viewer, operator or admin.")],
    database_url: DatabaseOpt = None,
) -> None:
    """Change a user's role (the last admin stays one)."""
    wanted = _role(role)
    with books(database_url) as found:
        user = found.accounts.set_role(name, wanted)
        found.record("change_user", name, role=user.role.value)
    typer.echo(f"user {name}: {user.role}")


@user_app.command("remove")
def remove(name: NameArg, database_url: DatabaseOpt = None) -> None:
    """Remove a user with their tokens and sessions (not the last admin)."""
    with books(database_url) as found:
        found.accounts.remove_user(name)
        found.record("remove_user", name)
    typer.echo(f"user {name} removed")


@contextmanager
def books(database_url: str | None, *, create: bool = False) -> Iterator[Books]:
    """The database's accounts (migrated first); its errors become one line and a code.

    Only with ``create`` may a SQLite file that is not there be made: a mistyped path
    is said, not left behind as a new, empty database.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from jobyard.access.accounts import Accounts
    from jobyard.access.audit import Audit
    from jobyard.clock import utcnow
    from jobyard.errors import JobyardError

    settings = read_settings({"database_url": database_url})
    if not create and (missing := missing_sqlite_file(settings.database_url)) is not None:
        fail(f"{DATABASE}: no database at {missing} (no such file)", UNREACHABLE)
    if database_url is None and "database_url" not in settings.model_fields_set:
        # Neither given nor in the environment: a cluster's users are not in this file.
        typer.echo(
            f"on the default database {settings.database_url} (--database-url for another)",
            err=True,
        )
    store = open_database(settings.database_url, UNREACHABLE)
    try:
        store.migrate()
        yield Books(Accounts(store, utcnow), Audit(store, utcnow), f"cli:{_login()}")
    except JobyardError as exc:
        fail(_problem(exc), exit_code(exc.status))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        fail(f"cannot use the database: {reason}", UNREACHABLE)
    finally:
        store.close()


def users_table(users: list[User]) -> Table:
    """name, role, when added, when last changed."""
    from rich.table import Table

    from jobyard.cli.render import short_moment

    table = Table(caption=counted(len(users), "users"))
    for column in ("name", "role", "created", "changed"):
        table.add_column(column)
    for user in users:
        table.add_row(
            user.name, user.role, short_moment(user.created_at), short_moment(user.updated_at)
        )
    return table


def _role(value: str) -> Role:
    from jobyard.access.roles import Role

    if value not in ROLES:
        fail(f"unknown role {value!r}: viewer, operator or admin")
    return Role(value)


def _problem(exc: JobyardError) -> str:
    """The error's detail with its bad fields, on one line."""
    fields = "; ".join(e.get("message", "") for e in exc.extra.get("errors") or ())
    return f"{exc.detail} ({fields})" if fields else str(exc.detail)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "unknown"


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user", rich_help_panel=PANEL)
