"""What the client commands share: options, exit codes, errors, argument parsing.

Only Typer is imported at module level (``jobyard --help`` stays fast); the
HTTP client and Rich are imported inside the functions that use them.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from jobyard.cli import complete
from jobyard.text import text_problem

if TYPE_CHECKING:
    from rich.console import RenderableType

    from jobyard.client.sync import Client

T = TypeVar("T")
S = TypeVar("S", bound=Sequence[Any])

OK = 0
JOB_FAILED = 1
USAGE = 2
NOT_FOUND = 3
CONFLICT = 4
UNREACHABLE = 5
AUTH = 6
FORBIDDEN = 7
INTERRUPTED = 130

PANEL = "Jobs (client commands)"

ServerOpt = Annotated[
    str,
    typer.Option(
        "--server",
        "-s",
        envvar="JOBYARD_SERVER",
        help="URL of the jobyard server.",
        show_default=True,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def name_arg(what: str, completion: Callable[..., Any]) -> Any:
    """The ``NAME`` argument of a command about one named thing: ``what`` is its help,
    ``completion`` offers the names the server knows."""
    return typer.Argument(metavar="NAME", help=what, show_default=False, autocompletion=completion)


JobIdArg = Annotated[
    int,
    typer.Argument(
        metavar="ID", help="Job id.", show_default=False, autocompletion=complete.job_ids
    ),
]
ListTypeOpt = Annotated[
    str | None,
    typer.Option("--type", help="Only these types.", autocompletion=complete.job_types),
]
ListQueueOpt = Annotated[
    str | None, typer.Option(help="Only these queues.", autocompletion=complete.queues)
]
DEFAULT_SERVER = "http://127.0.0.1:8000"
LOGIN_HINT = "log in with `jobyard login` or pass --token/--user"


def fail(message: str, code: int = USAGE) -> NoReturn:
    """Print ``jobyard: error: …`` on stderr and exit with ``code``."""
    typer.echo(f"jobyard: error: {message}", err=True)
    raise typer.Exit(code)


def exit_code(status: int) -> int:
    """The exit code of an HTTP error status."""
    if status in (401, 429):  # 429: too many failed logins
        return AUTH
    if status == 403:
        return FORBIDDEN
    if status == 404:
        return NOT_FOUND
    if status == 409:
        return CONFLICT
    if 400 <= status < 500:
        return USAGE
    return JOB_FAILED


def server_problem(server: str) -> str | None:
    """Why ``server`` is no server's address (``http[s]://HOST[:PORT]``, or ``HOST:PORT``
    as the client takes it: ``http://`` then), or None."""
    from urllib.parse import urlsplit

    from jobyard.client.values import server_url

    try:
        parts = urlsplit(server_url(server))
        parts.port  # noqa: B018 (a port that is no number raises here)
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "expected http://HOST:PORT (or https://, or HOST:PORT)"
    if parts.path.strip("/") or parts.path.startswith("//") or parts.query or parts.fragment:
        return "expected the server's root, http://HOST:PORT, without a path"
    return None


@contextmanager
def connect(server: str, **credentials: Any) -> Iterator[Client]:
    """A client of ``server``; API and connection errors become one line and an exit code.

    It acts with the command's credentials (:mod:`jobyard.cli.credentials`), or
    with ``credentials`` (the client's ``token`` or ``auth``) when given.
    """
    from jobyard.cli.credentials import client_auth
    from jobyard.client.sync import (
        ApiError,
        Client,
        ServerUnreachable,
        StreamUnavailable,
        Unauthorized,
    )

    if (problem := server_problem(server)) is not None:
        fail(f"--server {server!r}: {problem}", USAGE)
    try:
        with Client(server, **(credentials or client_auth())) as client:
            yield client
    except Unauthorized as exc:
        fail(f"{exc.message} — {_login_hint(server, bool(credentials))}", AUTH)
    except ApiError as exc:
        fail(exc.message, exit_code(exc.status))
    except ServerUnreachable as exc:
        fail(str(exc), UNREACHABLE)
    except StreamUnavailable as exc:
        fail(str(exc), JOB_FAILED)
    except UnicodeEncodeError:  # a word of the command line held bytes that are not UTF-8
        fail("an argument holds bytes that are not UTF-8 text", USAGE)
    except KeyboardInterrupt:
        raise typer.Exit(INTERRUPTED) from None


def _login_hint(server: str, explicit: bool) -> str:
    """What to do after a 401, and why the saved login was not used (when it was not)."""
    from jobyard.cli.credentials import given
    from jobyard.client.auth import login_note

    note = "" if explicit or given() else login_note(server)
    return f"{LOGIN_HINT} ({note})" if note else LOGIN_HINT


def parse_assignments(
    pairs: Sequence[str], schema: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``key=value`` arguments as a dict; a value is JSON when it parses, else a string.

    A parameter that ``schema`` (the job type's JSON Schema) declares a string
    keeps its text as it is: ``text=123`` is ``"123"`` there (``text=null`` is null
    where the string is nullable).
    """
    properties = (schema or {}).get("properties") or {}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, equals, raw = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            fail(f"bad argument {pair!r}: expected key=value (e.g. count=3 or name=abc)")
        if text_problem(pair) is not None:  # bytes not UTF-8 come as lone surrogates
            fail(f"bad argument {_shown(key)}: it holds bytes that are not UTF-8 text")
        kinds = _types_of(properties.get(key) or {})
        if kinds == {"string"} or (kinds == {"string", "null"} and raw != "null"):
            values[key] = raw
        else:
            values[key] = parse_value(raw)
    return values


def _types_of(schema: Mapping[str, Any]) -> set[str]:
    """The JSON types a param's schema allows: ``"type": "string"``, a list of them, or
    alternatives (pydantic's ``Optional[str]``: ``anyOf: [{type: string}, {type: null}]``);
    empty when it does not say."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {str(k) for k in kind}
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list) and options:
        found = [_types_of(option) for option in options if isinstance(option, Mapping)]
        if found and all(found):
            return set().union(*found)
    return set()


def _shown(text: str) -> str:
    return repr(text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def parse_value(raw: str) -> Any:
    """``3`` → 3, ``true`` → True, ``[1,2]`` → [1, 2], ``"3"`` → "3", ``abc`` → "abc"."""
    try:
        return json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError):  # nested past the stack: text, as the server sees
        return raw


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity stay strings


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: no JSON number once sent, so it stays a string too
        raise ValueError(text)
    return value


def print_json(value: Any) -> None:
    """``value`` (client data or plain JSON) as indented JSON on stdout."""
    from jobyard.client.models import plain

    typer.echo(json.dumps(plain(value), indent=2, ensure_ascii=False))


def print_view(value: T, json_: bool, view: Callable[[T], RenderableType]) -> None:
    """``value`` as JSON with ``--json``, else what ``view`` makes of it, printed by Rich."""
    if json_:
        print_json(value)
        return
    from jobyard.cli.render import console

    console().print(view(value))


def print_items(found: S, json_: bool, table: Callable[[S], RenderableType]) -> None:
    """A listing: ``{"items": […], "total": n}`` with ``--json``, else ``table(found)``."""
    if json_:
        print_json({"items": found, "total": len(found)})
    else:
        print_view(found, json_, table)


def print_json_line(value: Any) -> None:
    """``value`` as one line of JSON (for streams of records)."""
    from jobyard.client.models import plain

    sys.stdout.write(json.dumps(plain(value), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def parse_moment(
    value: str | None, option: str = "--since", now: datetime | None = None
) -> datetime | None:
    """``2h`` → two hours before ``now``; ``2026-05-01T06:00`` → that time (local if naive)."""
    if value is None:
        return None
    from jobyard import durations

    try:
        return durations.parse_moment(value, now or datetime.now(UTC), zone=None, seconds=True)
    except ValueError as exc:
        fail(f"{option} {exc}")


def counted(n: int, plural: str) -> str:
    """``n`` and the noun, singular for one: ``1 queue``, ``3 queues``."""
    return f"{n} {plural.removesuffix('s') if n == 1 else plural}"
