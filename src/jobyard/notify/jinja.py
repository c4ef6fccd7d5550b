"""The Jinja2 sandbox every notification template renders in: webhook and AMQP bodies,
routing keys, and the email's subject, text and HTML.

Templates are compiled once per source text. Two environments share the filters
``duration`` (seconds → ``1 min 35 s``) and ``size`` (bytes → ``612.0 MB``) of
:mod:`jobyard.units`, as the UI and the CLI write them, ``sla_line``, ``mrkdwn`` (Slack's
escaping) and ``number`` (``%g``: ``1e+06``, ``12.5``): one writes text as it is, the other
escapes HTML (for ``email.html.j2``). What an event lacks renders empty
(``{{ job.type }}`` for a workflow event), never as an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from jobyard.units import duration, size
from jobyard.worker.sla import overrun


class TemplateProblem(Exception):
    """A template that cannot make its text; ``reason`` is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FieldProblem(Exception):
    """A template key of the configuration that cannot be used: ``field`` and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def read_template(field: str, name: str, base_dir: Path) -> tuple[Path, str]:
    """``(file, text)`` of the template file ``name`` (relative to ``base_dir``) that
    ``field`` names; raises :class:`FieldProblem`."""
    path = base_dir / name
    try:
        return path, path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else "cannot read"
        raise FieldProblem(field, f"{reason}: {path}") from None


def _mrkdwn(value: Any) -> str:
    """Slack's escaping for text in ``mrkdwn`` fields: ``&``, ``<`` and ``>``."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn_code(value: Any) -> str:
    """:func:`_mrkdwn` for text within a code block: backticks in a job's output would
    end the block (or join its fence), and the rest would be read as Slack's markup. A
    word joiner (U+2060, not shown) on each side of a backtick keeps every one apart."""
    return _mrkdwn(value).replace("`", "\u2060`\u2060")


def _duration(seconds: float | None) -> str:
    """:func:`jobyard.units.duration`, empty for a value the event does not have."""
    return "" if seconds is None or isinstance(seconds, Undefined) else duration(seconds)


def _size(count: float | None) -> str:
    """:func:`jobyard.units.size`, empty for a value the event does not have."""
    return "" if count is None or isinstance(count, Undefined) else size(count)


def sla_line(sla: Mapping[str, Any]) -> str:
    """An event's ``sla`` as one line: ``max_runtime 25 min 00 s > 20 min 00 s``,
    ``rows 5000 > 1000`` (a ``max_data`` budget by its metric), or just over, where both
    read the same, by how much (``max_runtime 3.0 s exceeded by 27 ms``)."""
    name = sla.get("metric") or sla["budget"]
    return f"{name} {overrun(sla['budget'], sla['value'], sla['limit'])}"


def _number(value: float | None) -> str:
    """``%g`` of a number (``500``, ``1e+06``), empty for a value the event does not have."""
    return "" if value is None or isinstance(value, Undefined) else f"{value:g}"


def _environment(*, html: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=ChainableUndefined,  # {{ job.type }} is empty for a workflow event
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters |= {"duration": _duration, "size": _size, "mrkdwn": _mrkdwn, "number": _number}
    env.filters["mrkdwn_code"] = _mrkdwn_code
    env.filters["sla_line"] = sla_line
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False}
    return env


_ENVIRONMENTS = {False: _environment(html=False), True: _environment(html=True)}


@lru_cache(maxsize=128)
def compile_template(source: str, *, html: bool = False) -> Template:
    """The compiled ``source`` (cached: each channel renders the same text again and again);
    ``html`` escapes what it inserts. Raises :class:`TemplateProblem` naming the line of a
    syntax error."""
    try:
        return _ENVIRONMENTS[html].from_string(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" on line {line}" if line else ""
        raise TemplateProblem(f"template syntax error{where}: {exc}") from None


def render_source(source: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    """``source`` rendered with ``context``; raises :class:`TemplateProblem`."""
    template = compile_template(source, html=html)
    try:
        return template.render(context)
    except Exception as exc:  # a failing expression in the user's template
        raise TemplateProblem(f"template failed: {type(exc).__name__}: {exc}") from None
