"""``jobyard whoami``, ``passwd``, ``tokens`` and ``audit``: access control over the API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from jobyard.cli.common import (
    DEFAULT_SERVER,
    JsonOpt,
    ServerOpt,
    connect,
    counted,
    fail,
    parse_moment,
    print_items,
    print_json,
    print_view,
)
from jobyard.cli.credentials import TwoPasswordsStdinOpt, read_password

if TYPE_CHECKING:
    from rich.table import Table

    from jobyard.client.sync import AuditPage, Client, Me, TokenInfo

PANEL = "Access (client commands)"
OUTCOME_STYLES = {"ok": "green", "denied": "bold red", "failed": "red"}
API_PREFIX = "/api/v1"


def whoami(json_: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Who the credentials belong to, and the role the commands act with."""
    with connect(server) as client:
        me = client.me()
    if json_:
        print_json(me)
    else:
        typer.echo(f"{me.name} ({me.role}) {_how(me)} on {client.server}")


def _how(me: Me) -> str:
    return f"with token {me.token_id}" if me.via == "token" else f"with a {me.via}"


def passwd(
    password_stdin: TwoPasswordsStdinOpt = False, server: ServerOpt = DEFAULT_SERVER
) -> None:
    """Change your own password: the current one, then the new one, asked on the terminal
    without echo (the new one twice), or one line each on stdin with --password-stdin.

    Your other browser sessions end, and so does the use of the old password (e.g. in
    JOBYARD_PASSWORD); API tokens, the one `jobyard login` saved too, go on.
    """
    with connect(server) as client:
        name = client.me().name
        current = read_password(password_stdin, f"Current password of {name}")
        new = read_password(password_stdin, f"New password of {name}", twice=True)
        client.change_password(current, new)
    typer.echo(f"password of {name} changed on {client.server}")


def tokens(
    action: Annotated[
        str,
        typer.Argument(
            metavar="[list|create|revoke]", help="What to do (default: list).", show_default=False
        ),
    ] = "list",
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME|ID]",
            help="create: the token's name; revoke: its id.",
            show_default=False,
        ),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(help="create: viewer, operator or admin (default and at most: yours)."),
    ] = None,
    expires: Annotated[
        str, typer.Option(help="create: its lifetime, e.g. 8h, 90d, or never.")
    ] = "30d",
    all_: Annotated[bool, typer.Option("--all", help="list: every user's (admins).")] = False,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """List your API tokens, create one, or revoke one.

    `jobyard tokens [list] [--all]` · `jobyard tokens create NAME [--role R]
    [--expires 90d|never]` (the secret is printed on stdout, this once) ·
    `jobyard tokens revoke ID`.
    """
    if action not in {"list", "create", "revoke"}:
        fail(f"unknown action {action!r}: list, create NAME or revoke ID")
    if action != "list" and not target:
        fail(f"tokens {action} needs {'a NAME' if action == 'create' else 'an ID'}")
    with connect(server) as client:
        if action == "create":
            assert target is not None
            _create(client, target, role, expires, json_)
        elif action == "revoke":
            token = client.revoke_token(_token_id(target))
            _show_one(token, json_, f"token {token.id} ({token.name} of {token.user}) revoked")
        else:
            found = client.tokens(all=all_)
            print_items(found, json_, tokens_table)


def _create(client: Client, name: str, role: str | None, expires: str, json_: bool) -> None:
    lifetime = None if expires.strip().lower() == "never" else expires
    made = client.create_token(name, role, lifetime)
    token = made.token
    if json_:
        print_json(made)
    else:
        typer.echo(
            f"token {token.id} ({token.name}, {token.role}{_until(token)}) created; its secret "
            "follows and is shown this once: keep it now, send it as `Authorization: Bearer …`",
            err=True,
        )
        typer.echo(made.secret)
    if _capped(token, lifetime):
        from jobyard.cli.render import moment

        # The server caps it without a word (a stolen token must not outlive itself).
        typer.echo(
            "capped: a token made with a token ends no later than that one (this one: "
            f"{moment(token.expires_at)}); make it with --user and a password for a longer one",
            err=True,
        )
    if token.made_by is not None:
        typer.echo(
            f"made with token {token.made_by}: revoking that one revokes this one too "
            "(`jobyard logout` revokes the one it saved); make it with --user and a password "
            "to keep it apart",
            err=True,
        )


def _capped(token: TokenInfo, lifetime: str | None) -> bool:
    """Whether the token ends earlier than ``lifetime`` (None: never) from its creation."""
    if token.expires_at is None:
        return False
    if lifetime is None or token.created_at is None:
        return lifetime is None
    from jobyard.durations import parse_duration

    asked = token.created_at + timedelta(seconds=parse_duration(lifetime))
    return token.expires_at < asked - timedelta(seconds=1)  # the store may round times


def _token_id(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        fail(f"bad token id {value!r}: a number (see: jobyard tokens)")


def _show_one(token: TokenInfo, json_: bool, sentence: str) -> None:
    if json_:
        print_json(token)
    else:
        typer.echo(sentence)


def _until(token: TokenInfo) -> str:
    from jobyard.cli.render import moment

    return f", until {moment(token.expires_at)}" if token.expires_at else ", never expires"


def tokens_table(found: Sequence[TokenInfo]) -> Table:
    """id, name, user, role, created, expires, and whether it still works."""
    from rich.table import Table
    from rich.text import Text

    from jobyard.cli.render import NONE, short_moment

    now = datetime.now(UTC)
    table = Table(caption=counted(len(found), "tokens"))
    for column in ("id", "name", "user", "role", "created", "expires", "state"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for token in found:
        state = "revoked" if token.revoked_at else "active" if token.valid(now) else "expired"
        table.add_row(
            str(token.id),
            token.name,
            token.user,
            token.role,
            short_moment(token.created_at) if token.created_at else NONE,
            short_moment(token.expires_at) if token.expires_at else "never",
            Text(state, style="green" if state == "active" else "bright_black"),
        )
    return table


TimeOpt = Annotated[str | None, typer.Option(metavar="2h|ISO", show_default=False)]


def audit(
    actor: Annotated[str | None, typer.Option(help="Only these users, comma separated.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only these actions, e.g. submit,kill_job,login.")
    ] = None,
    outcome: Annotated[str | None, typer.Option(help="ok, denied or failed.")] = None,
    since: TimeOpt = None,
    until: TimeOpt = None,
    search: Annotated[str | None, typer.Option(help="Text in the target.")] = None,
    page: Annotated[int, typer.Option(min=1, help="Page number.")] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=500, help="Entries a page.")] = 50,
    json_: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """The audit log, newest first: who changed what, when, and if it was allowed (admins).

    --since and --until take a time (ISO 8601; local time without an offset)
    or a duration back from now (2h, 1d, 30m).
    """
    start, end = parse_moment(since, "--since"), parse_moment(until, "--until")
    with connect(server) as client:
        found = client.audit(page, per_page, actor, action, outcome, start, end, search)
    print_view(found, json_, audit_table)


def audit_table(found: AuditPage) -> Table:
    """when, actor, action, target, outcome: one entry a row, narrow enough for 80 columns."""
    from rich.table import Table
    from rich.text import Text

    from jobyard.cli.render import NONE, short_moment

    caption = f"page {found.page} of {found.pages} · {found.total} entries"
    table = Table(caption=caption)
    for column in ("when", "actor", "action", "target", "outcome"):
        table.add_column(column, no_wrap=column in {"when", "outcome"}, overflow="fold")
    for entry in found.items:
        table.add_row(
            short_moment(entry.at) if entry.at else NONE,
            entry.actor,
            entry.action,
            entry.target.removeprefix(API_PREFIX),
            Text(entry.outcome, style=OUTCOME_STYLES.get(entry.outcome, "")),
        )
    return table


def register(app: typer.Typer) -> None:
    for command in (whoami, passwd, tokens, audit):
        app.command(rich_help_panel=PANEL)(command)
