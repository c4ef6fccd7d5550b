"""Shell completion of what the server knows: job types, parameters, job ids, workers…

Typer calls these hooks (``autocompletion=``) while the shell asks for
completions. Each asks the server the command line names (``--server``, its
credentials, or their variables and the saved token) with a short timeout, and
fails silently: a completion that cannot reach the server offers nothing, it
never prints an error into the user's prompt.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from jobyard.client.sync import Client

TIMEOUT = 1.0  # seconds a completion waits for the server (JOBYARD_COMPLETION_TIMEOUT)
JOB_IDS = 50  # the newest jobs offered
# The job states (jobyard.states.JobState), listed here so completing them needs no server code.
STATES = (
    "held", "scheduled", "waiting", "queued", "running", "paused",
    "succeeded", "failed", "killed", "upstream_failed",
)  # fmt: skip
LIVE_STATES = STATES[:6]
Choices = list[tuple[str, str]]


def states(incomplete: str) -> Choices:
    """Job states; after a comma, the next state of a list (``failed,ki`` → ``failed,killed``)."""
    return _listed(incomplete, ((state, "") for state in STATES))


def job_types(ctx: typer.Context, incomplete: str) -> Choices:
    """Names of the server's job types, with their descriptions (comma lists too)."""
    found = _ask(ctx, lambda client: [(t.name, t.description or "") for t in client.job_types()])
    return _listed(incomplete, found)


def parameters(ctx: typer.Context, incomplete: str) -> Choices:
    """``name=`` for each parameter of the TYPE given before that is not given yet.

    Nothing while a value is typed: after ``name=`` in one word (zsh, fish), or after
    a word that ends with ``=`` (bash breaks ``name=value`` into ``name``, ``=`` and
    ``value``): a ``name=`` offered there would end up inside the value.
    """
    type_name = ctx.params.get("type_")
    words = ctx.params.get("args") or []
    if not type_name or "=" in incomplete or (words and words[-1].endswith("=")):
        return []
    given = _given(words)
    schema = _ask(ctx, lambda client: client.job_type(type_name).params) or {}
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    return [
        (f"{name}=", _describe(prop, name in required))
        for name, prop in properties.items()
        if name not in given
    ]


def _given(words: list[str]) -> set[str]:
    """The names of ``name=value`` words, and of bash's ``name``, ``=``, ``value``."""
    names = {word.partition("=")[0] for word in words if "=" in word}
    return names | {word for word, after in pairwise(words) if after.startswith("=")}


def job_ids(ctx: typer.Context, incomplete: str) -> Choices:
    """The ids of the newest jobs, with their type and state."""
    return _ids(ctx, None)


def live_job_ids(ctx: typer.Context, incomplete: str) -> Choices:
    """The ids of the jobs not ended yet (the ones pause, resume and kill act on)."""
    return _ids(ctx, LIVE_STATES)


def workers(ctx: typer.Context, incomplete: str) -> Choices:
    found = _ask(ctx, lambda client: [(w.name, w.state) for w in client.workers()])
    return _listed(incomplete, found)


def queues(ctx: typer.Context, incomplete: str) -> Choices:
    found = _ask(ctx, lambda client: [(q.name, _queue_note(q.paused)) for q in client.queues()])
    return _listed(incomplete, found)


def schedules(ctx: typer.Context, incomplete: str) -> Choices:
    found = _ask(ctx, lambda client: [(s.name, s.description) for s in client.schedules()])
    return _listed(incomplete, found)


def workflows(ctx: typer.Context, incomplete: str) -> Choices:
    found = _ask(ctx, lambda client: [(w["name"], w["description"]) for w in client.workflows()])
    return _listed(incomplete, found)


def _ids(ctx: typer.Context, wanted: Iterable[str] | None) -> Choices:
    def newest(client: Client) -> Choices:
        page = client.jobs(per_page=JOB_IDS, sort="-created_at", state=wanted)
        return [(str(job.id), f"{job.type} {job.state}") for job in page.items]

    return _ask(ctx, newest) or []


def _queue_note(paused: bool) -> str:
    return "paused" if paused else ""


def _describe(prop: dict[str, Any], required: bool) -> str:
    kind = prop.get("type", "any")
    text = " | ".join(kind) if isinstance(kind, list) else str(kind)
    text += ", required" if required else ""
    return f"{text}: {prop['description']}" if prop.get("description") else text


def _listed(incomplete: str, names: Iterable[tuple[str, str]] | None) -> Choices:
    """``names``, each after the words of a comma list typed so far."""
    head, comma, last = incomplete.rpartition(",")
    done = set(head.split(",")) if comma else set()
    prefix = head + comma
    return [
        (prefix + name, note)
        for name, note in names or ()
        if name.startswith(last) and name not in done
    ]


def _ask(ctx: typer.Context, question: Callable[[Client], Any]) -> Any:
    """``question``'s answer from the server the command line names; None on any failure."""
    from jobyard.client.sync import Client

    try:
        timeout = float(os.environ.get("JOBYARD_COMPLETION_TIMEOUT") or TIMEOUT)
        with Client(_server(ctx), timeout=timeout, retries=0, **_credentials(ctx)) as client:
            return question(client)
    except Exception:  # completion must never break the prompt
        return None


def _server(ctx: typer.Context) -> str:
    from jobyard.cli.common import DEFAULT_SERVER  # common imports this module

    return str(_param(ctx, "server") or os.environ.get("JOBYARD_SERVER") or DEFAULT_SERVER)


def _credentials(ctx: typer.Context) -> dict[str, Any]:
    """The command line's token or user and password; else the client's own fallbacks.

    A user without a password is left out: a completion cannot ask for one.
    """
    token, user = _param(ctx, "auth_token"), _param(ctx, "auth_user")
    password = _param(ctx, "auth_password")
    if token:
        return {"token": token}
    if user and password is not None:
        return {"auth": (user, password)}
    return {}


def _param(ctx: typer.Context, name: str) -> Any:
    """A parameter of the command being completed or of a group above it."""
    current: Any = ctx
    while current is not None:
        if current.params.get(name) is not None:
            return current.params[name]
        current = current.parent
    return None
