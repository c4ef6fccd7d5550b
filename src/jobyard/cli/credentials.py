"""Who a client command acts as: ``--token``, ``--user`` and ``--password``.

Every client command takes them (it is a client command if it takes
``--server``): :func:`add_to` gives each such command of an app the three
options, once, where the commands are registered, instead of one parameter
more in every signature. The values live in a context variable while the
command runs, and :func:`client_auth` turns them into the client's arguments.
Without any, the client falls back to the token ``jobyard login`` saved for the server.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import typing
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Annotated, Any

import typer

from jobyard.cli.common import fail

PANEL = "Credentials"

TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="JOBYARD_TOKEN",
        help="An API token (jobyard tokens create). Default: the one jobyard login saved.",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user",
        "-u",
        envvar="JOBYARD_USER",
        help="A user name; without --password its password is asked on the terminal.",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--password",
        envvar="JOBYARD_PASSWORD",
        help="The user's password (prefer the variable: other users see arguments in ps).",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
PasswordStdinOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of stdin (for scripts)."
    ),
]
TwoPasswordsStdinOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the current password from the first line of stdin and the new one from the "
        "second (for scripts).",
    ),
]
_OPTIONS = {"auth_token": TokenOpt, "auth_user": UserOpt, "auth_password": PasswordOpt}


@dataclass(frozen=True)
class Credentials:
    token: str | None = None
    user: str | None = None
    password: str | None = None


_current: ContextVar[Credentials | None] = ContextVar("jobyard_credentials", default=None)


def add_to(app: typer.Typer) -> None:
    """Give every command of ``app`` (and of its sub-apps) that takes ``server`` the options."""
    for info in app.registered_commands:
        if info.callback is not None and "server" in inspect.signature(info.callback).parameters:
            info.callback = _with_credentials(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            add_to(group.typer_instance)


def client_auth() -> dict[str, Any]:
    """The client's ``token`` or ``auth`` of this command (empty: the client's own fallbacks).

    A user without a password is asked for it when stdin is a terminal; without
    a terminal the command fails here, before a request with no password would
    be refused as a wrong one.
    """
    found = _current.get() or Credentials()
    if found.token:
        return {"token": found.token}
    if not found.user:
        return {}
    if found.password is None:
        if not sys.stdin.isatty():
            fail(
                f"no password for user {found.user} and no terminal to ask it on: "
                "set JOBYARD_PASSWORD (or pass --password)"
            )
        password = typer.prompt(f"Password of {found.user}", hide_input=True, err=True)
        found = replace(found, password=password)
        _current.set(found)
    return {"auth": (found.user, found.password)}


def given() -> bool:
    """Whether the command acts with credentials of its own (options or environment)."""
    found = _current.get() or Credentials()
    env = os.environ
    return bool(found.token or found.user or env.get("JOBYARD_TOKEN") or env.get("JOBYARD_USER"))


def read_password(from_stdin: bool, prompt: str = "Password", twice: bool = False) -> str:
    """A password: the first line of stdin, or typed at a hidden prompt (``twice`` to confirm).

    Never an argument: other users of the machine see arguments in ``ps``.
    """
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:  # named by its prompt: passwd reads two lines
            fail(f"--password-stdin: no password on stdin (expected: {prompt.lower()})")
        return password
    if not sys.stdin.isatty():
        fail("no terminal to ask the password on: pass it on stdin with --password-stdin")
    password = typer.prompt(prompt, hide_input=True, confirmation_prompt=twice, err=True)
    return str(password)


def _with_credentials(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` with the credential options at the end of its signature (for Typer)."""
    hints = typing.get_type_hints(function, include_extras=True)
    signature = inspect.signature(function)
    parameters = [
        p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()
    ]
    parameters += [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option, default=None)
        for name, option in _OPTIONS.items()
    ]

    @functools.wraps(function)
    def command(
        *args: Any,
        auth_token: str | None = None,
        auth_user: str | None = None,
        auth_password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        chosen = _chosen(Credentials(auth_token, auth_user, auth_password))
        reset = _current.set(chosen)
        try:
            return function(*args, **kwargs)
        finally:
            _current.reset(reset)

    # Typer reads the options from the signature and the type hints.
    command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return command


def _chosen(given: Credentials) -> Credentials:
    """A token wins over a user, but not a token of the environment over a typed user."""
    from_env = given.token is not None and given.token == os.environ.get("JOBYARD_TOKEN")
    typed_user = given.user is not None and given.user != os.environ.get("JOBYARD_USER")
    return replace(given, token=None) if from_env and typed_user else given
