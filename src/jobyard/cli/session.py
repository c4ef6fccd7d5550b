"""``jobyard login`` and ``logout``: a saved API token instead of a password.

They take their own credentials (a password to make the token; the saved token
to revoke it), so they are registered after the client commands got theirs.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Annotated

import typer

from jobyard.cli.common import AUTH, DEFAULT_SERVER, ServerOpt, connect, fail
from jobyard.cli.credentials import PasswordStdinOpt, read_password

if TYPE_CHECKING:
    from jobyard.client.sync import Client, TokenInfo

PANEL = "Access (client commands)"


def login(
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            "-u",
            envvar="JOBYARD_USER",
            help="Your user name (asked when missing).",
            show_default=False,
        ),
    ] = None,
    expires: Annotated[
        str,
        typer.Option(help="The token's lifetime, e.g. 8h, 30d, 90d, or never."),
    ] = "30d",
    name: Annotated[
        str | None,
        typer.Option(help="The token's name in `jobyard tokens` (default: jobyard login on HOST)."),
    ] = None,
    password_stdin: PasswordStdinOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Log in: make an API token with your password and save it for the next commands.

    The token is kept with the server's URL in $XDG_CONFIG_HOME/jobyard/login.json
    (~/.config/jobyard/login.json), readable by you only, beside those of other
    servers; client commands use it for that server when given no other credentials.
    `jobyard logout` revokes it, as logging in again revokes the one it replaces.
    """
    from jobyard.client.auth import save_login, saved_token
    from jobyard.client.sync import Unauthorized

    if user is None:
        user = _ask_user(password_stdin)
    password = read_password(password_stdin, f"Password of {user}")
    lifetime = None if expires.strip().lower() == "never" else expires
    with connect(server, auth=(user, password)) as client:
        try:
            made = client.create_token(name or _default_name(), None, lifetime)
        except Unauthorized as exc:
            fail(exc.message, AUTH)
    replaced = saved_token(client.server)
    path = save_login(client.server, made.secret)
    typer.echo(f"logged in to {client.server} as {user} ({made.token.role}){_until(made.token)}")
    typer.echo(f"the token is saved in {path}, for {client.server} only")
    if replaced is not None:
        _revoke_replaced(client.server, replaced)


def logout(server: ServerOpt = DEFAULT_SERVER) -> None:
    """Revoke the token `jobyard login` saved for the server, and forget it."""
    from jobyard.client.auth import forget_login, login_note, old_token_path, saved_token
    from jobyard.client.sync import Unauthorized

    secret, old = saved_token(server), old_token_path()
    if secret is None:
        note = login_note(server)
        if old.exists():  # never sent anywhere: which server it was for is not known
            old.unlink()
            note += "; removed it (revoke it with `jobyard tokens revoke` if it still works)"
        typer.echo(f"not logged in to {server}" + (f": {note}" if note else ""))
        return
    with connect(server, token=secret) as client:
        try:
            said = _revoke_own(client)
        except Unauthorized:  # expired or revoked: nothing left to revoke
            said = f"{client.server} does not know the saved token"
    path = forget_login(server)
    typer.echo(f"logged out: {said}; removed from {path}")


def _revoke_own(client: Client) -> str:
    """Revoke the token ``client`` acts with, and the tokens made with it: which, in words.

    Raises ``Unauthorized`` when the server does not know the token (expired or revoked).
    """
    from jobyard.client.sync import ApiError, Unauthorized

    token_id = client.me().token_id
    made: list[str] = []
    if token_id is not None:
        try:
            made = _made_with(client.tokens(), token_id)  # while the token works
        except Unauthorized:
            raise
        except ApiError:
            pass  # the list only says which go with it: the revoke matters
    return _revoke(client, token_id, made)


def _revoke(client: Client, token_id: int | None, made: list[str]) -> str:
    """Revoke the token ``token_id`` that ``client`` acts with (``made``: the tokens made
    with it, which go with it): what was revoked, in words."""
    said = f"token {token_id} revoked"
    if token_id is not None:
        client.revoke_token(token_id)
        if made:
            said += ", with the tokens made with it: " + ", ".join(made)
    return said


def _revoke_replaced(server: str, secret: str) -> None:
    """Revoke the token a new login replaced in the file, with itself (whoever's it is):
    else it would go on working, saved nowhere. Best effort: a failure is one line. One
    that tokens were made with is kept (revoking it would revoke them, a CI's token made
    while logged in, say): the line says so, and how to end it."""
    from jobyard.client.sync import ApiError, Client, ServerUnreachable, Unauthorized

    try:
        with Client(server, token=secret) as client:
            token_id = client.me().token_id
            made = [] if token_id is None else _made_with(client.tokens(), token_id)
            if made:
                typer.echo(
                    f"the token saved before ({token_id}) is kept: tokens were made with it "
                    f"({', '.join(made)}), and revoking it revokes them; "
                    f"`jobyard tokens revoke {token_id}` ends them all",
                    err=True,
                )
                return
            typer.echo(f"the token saved before: {_revoke(client, token_id, made)}")
    except Unauthorized:
        pass  # expired or revoked already: nothing to do
    except (ApiError, ServerUnreachable) as exc:
        why = exc.message if isinstance(exc, ApiError) else str(exc)
        typer.echo(
            f"the token saved before was not revoked ({why}): "
            "revoke it with `jobyard tokens revoke` if it still works",
            err=True,
        )


def _made_with(tokens: list[TokenInfo], token_id: int) -> list[str]:
    """``name (id)`` of the live tokens made with ``token_id``, and with those: revoking it
    revokes them."""
    from jobyard.clock import utcnow

    now, parents, made = utcnow(), {token_id}, []
    for token in sorted(tokens, key=lambda token: token.id):  # made after their maker
        if token.made_by in parents:
            parents.add(token.id)
            if token.valid(now):
                made.append(f"{token.name} ({token.id})")
    return made


def _ask_user(password_stdin: bool) -> str:
    import sys

    if password_stdin or not sys.stdin.isatty():
        fail("--user NAME (or JOBYARD_USER) is needed to log in without a terminal")
    return str(typer.prompt("User", err=True))


def _default_name() -> str:
    return f"jobyard login on {socket.gethostname()}"


def _until(token: TokenInfo) -> str:
    from jobyard.cli.render import moment

    return f" until {moment(token.expires_at)}" if token.expires_at else ", without expiry"


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(login)
    app.command(rich_help_panel=PANEL)(logout)
