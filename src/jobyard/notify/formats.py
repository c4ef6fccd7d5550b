"""Message bodies for webhook and AMQP channels: JSON, Slack, Teams, or a Jinja2 template.

``format: json`` sends :meth:`Message.body` as it always was. ``slack`` and ``teams`` render
the templates shipped in ``notify/templates/`` (``slack.json.j2``, ``teams.json.j2``); a file
of the same name in the section's ``templates:`` directory replaces the shipped one.
``format: template`` renders the channel's own template. Every template sees the webhook
body's keys (``event``, ``summary``, ``job``, ``run``, ``sla``, ``link``, ``log_tail``, …) plus
``subject`` and ``text`` (the email's), and the filters ``duration``, ``size`` and
``mrkdwn`` (Slack's escaping).

Templates run in Jinja2's sandbox and are compiled once per source text. Loading the
configuration renders each against sample messages (:func:`check`), so a syntax error, a
failing expression or a body that is not JSON stops the load instead of every delivery.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from jobyard.notify.message import Message, Notice, human_duration, human_size, render

FORMATS = ("json", "slack", "teams", "template")
SHIPPED = Path(__file__).parent / "templates"
SHIPPED_FILES = {"slack": "slack.json.j2", "teams": "teams.json.j2"}
JSON_TYPE = "application/json"

SAMPLES: tuple[Notice, ...] = (
    {
        "event": "failed",
        "at": "2026-03-01T02:00:09+00:00",
        "job": {"id": 42, "type": "etl", "state": "failed", "exit_code": 3, "runtime": 95.0},
        "log_tail": ["starting", "boom"],
        "link": "https://jobs.example.com/jobs/42",
    },
    {
        "event": "workflow_failed",
        "at": "2026-03-01T02:00:09+00:00",
        "run": {"id": 7, "workflow": "nightly", "state": "failed", "failed_nodes": ["extract"]},
        "link": None,
    },
    {
        "event": "sla_breach",
        "at": "2026-03-01T02:20:00+00:00",
        "job": {"id": 43, "type": "etl", "state": "running", "name": "export <all> & more"},
        "sla": {"budget": "max_output", "limit": 5e8, "value": 6.1e8, "action": "kill"},
        "log_tail": [],
    },
)
"""What loading renders every template with: a failed job, a failed workflow run, and an
SLA breach of a running job."""


class TemplateProblem(Exception):
    """A template that cannot make a body; ``reason`` is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _mrkdwn(value: Any) -> str:
    """Slack's escaping for text in ``mrkdwn`` fields: ``&``, ``<`` and ``>``."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _duration(seconds: float | None) -> str:
    """``human_duration``, empty for a value the event does not have."""
    return "" if seconds is None or isinstance(seconds, Undefined) else human_duration(seconds)


def _size(count: float | None) -> str:
    """``human_size``, empty for a value the event does not have."""
    return "" if count is None or isinstance(count, Undefined) else human_size(count)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=ChainableUndefined,  # {{ job.type }} is empty for a workflow event
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters |= {"duration": _duration, "size": _size, "mrkdwn": _mrkdwn}
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False}
    return env


_ENV = _environment()


@lru_cache(maxsize=128)
def compile_template(source: str) -> Template:
    """The compiled ``source`` (cached: each channel renders the same text again and again).

    Raises :class:`TemplateProblem` naming the line of a syntax error."""
    try:
        return _ENV.from_string(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" on line {line}" if line else ""
        raise TemplateProblem(f"template syntax error{where}: {exc}") from None


def shipped_source(fmt: str, directory: Path | None = None) -> tuple[Path, str]:
    """The template of ``slack`` or ``teams``: ``directory``'s file of that name if it has
    one, else the shipped one; ``(path, text)``."""
    name = SHIPPED_FILES[fmt]
    path = directory / name if directory is not None else None
    if path is None or not path.is_file():
        path = SHIPPED / name
    return path, path.read_text(encoding="utf-8")


def context(message: Message) -> dict[str, Any]:
    """What a template sees: the JSON body's keys, ``subject`` and ``text``."""
    return {**message.payload, "subject": message.subject, "text": message.text}


def render_text(source: str, message: Message) -> str:
    """``source`` rendered for ``message``; raises :class:`TemplateProblem`."""
    try:
        return compile_template(source).render(context(message))
    except TemplateProblem:
        raise
    except Exception as exc:  # a failing expression in the user's template
        raise TemplateProblem(f"template failed: {type(exc).__name__}: {exc}") from None


def render_body(source: str, message: Message, content_type: str) -> bytes:
    """The body ``source`` makes for ``message``, checked to parse when it is JSON."""
    text = render_text(source, message)
    if is_json(content_type):
        try:
            json.loads(text)
        except ValueError as exc:
            raise TemplateProblem(f"the template did not make JSON: {exc}") from None
    return text.encode()


def is_json(content_type: str) -> bool:
    """Whether ``content_type`` is JSON (``application/json``, ``…+json``, with parameters)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == JSON_TYPE or kind.endswith("+json")


def check(source: str, content_type: str | None) -> str | None:
    """Why ``source`` cannot make a body (rendered for each of :data:`SAMPLES`), or ``None``."""
    try:
        for notice in SAMPLES:
            message = render(notice, delivery_id="sample")
            if content_type is None:
                render_text(source, message)
            else:
                render_body(source, message, content_type)
    except TemplateProblem as exc:
        return exc.reason
    return None
