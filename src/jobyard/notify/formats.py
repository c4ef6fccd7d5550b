"""Message bodies for webhook and AMQP channels: JSON, Slack, Teams, or a Jinja2 template.

``format: json`` sends :meth:`Message.body` as it always was. ``slack`` and ``teams`` render
the templates shipped in ``notify/templates/`` (``slack.json.j2``, ``teams.json.j2``); a file
of the same name in the section's ``templates:`` directory replaces the shipped one.
``format: template`` renders the channel's own template. Every template sees the webhook
body's keys (``event``, ``summary``, ``job``, ``run``, ``sla``, ``link``, ``log_tail``, …) plus
``subject`` and ``text`` (the email's, as the shipped templates write it), and the filters
of :mod:`.jinja` (``duration``, ``size``, ``number``, ``mrkdwn``).

Templates run in Jinja2's sandbox (:mod:`.jinja`). Loading the
configuration renders each against sample messages (:func:`check`), so a syntax error, a
failing expression or a body that is not JSON stops the load instead of every delivery.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobyard.notify.jinja import FieldProblem, TemplateProblem, read_template, render_source
from jobyard.notify.message import Message, Notice, render

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
    return render_source(source, context(message))


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


def body_source(
    fmt: str,
    keys: dict[str, str | None],
    media_type: str,
    directory: Path | None,
    base_dir: Path,
) -> str | None:
    """The text of a channel's body template (``None`` for ``json``), read and tried on
    :data:`SAMPLES`. ``keys`` are its ``template`` and ``template_file``; a ``slack`` or
    ``teams`` file in ``directory`` wins over the shipped one. Raises :class:`FieldProblem`."""
    given = [key for key, value in keys.items() if value is not None]
    if fmt == "template" and len(given) != 1:
        raise FieldProblem("template", "format: template takes template or template_file")
    if fmt != "template" and given:
        raise FieldProblem(given[0], f"a template goes with format: template, not {fmt}")
    if fmt == "json":
        return None
    if fmt in SHIPPED_FILES:
        field, (path, source) = "format", shipped_source(fmt, directory)
    elif keys.get("template") is not None:
        field, path, source = "template", None, str(keys["template"])
    else:
        field, (path, source) = (
            "template_file",
            read_template("template_file", str(keys["template_file"]), base_dir),
        )
    problem = check(source, media_type)
    if problem is not None:
        raise FieldProblem(field, problem + (f" (in {path})" if path else ""))
    return source


def sample_payloads() -> list[dict[str, Any]]:
    """The payloads of :data:`SAMPLES`, for checking the email's templates."""
    return [dict(render(notice, delivery_id="sample").payload) for notice in SAMPLES]


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
