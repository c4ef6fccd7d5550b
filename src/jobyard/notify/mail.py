"""An email's subject, plain text and optional HTML, rendered from Jinja2 templates.

The shipped ``email.subject.j2`` and ``email.txt.j2`` (in ``notify/templates/``) write the
email jobyard has always sent. A file of the same name in the section's ``templates:``
directory replaces the shipped one, and an ``email.html.j2`` there adds an HTML
alternative (none is shipped: by default mail is plain text). An email channel's own
``subject_template``, ``body_template``/``body_template_file`` and ``html_template_file``
replace those again for that channel (:mod:`.channels` resolves them at load).

Every template sees the webhook body's keys (:mod:`.message`); the text and HTML also see
the rendered ``subject``. Whatever a subject template writes is made one line of at most
160 characters, so no template can break the mail's headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from jobyard.notify.jinja import FieldProblem, TemplateProblem, read_template, render_source

SHIPPED = Path(__file__).parent / "templates"
FILES = {"subject": "email.subject.j2", "text": "email.txt.j2", "html": "email.html.j2"}
"""The file name of each part, shipped or in the ``templates:`` directory."""
MAX_SUBJECT = 160
CHANNEL_KEYS = ("subject_template", "body_template", "body_template_file", "html_template_file")
"""An email channel's keys for its own templates: inline text, or a file."""
_INLINE = {"subject_template": "subject", "body_template": "text"}
_FILES = {"body_template_file": "text", "html_template_file": "html"}


@dataclass(frozen=True)
class MailTemplates:
    """The template text of each part of an email; no ``html``: plain text only."""

    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True)
class MailParts:
    """An email's rendered subject (one line), text and optional HTML."""

    subject: str
    text: str
    html: str | None = None


@lru_cache(maxsize=1)
def shipped() -> MailTemplates:
    """The shipped templates: the plain-text email jobyard always sent."""
    return MailTemplates(
        subject=(SHIPPED / FILES["subject"]).read_text(encoding="utf-8"),
        text=(SHIPPED / FILES["text"]).read_text(encoding="utf-8"),
    )


def overrides(directory: Path | None) -> dict[str, Path]:
    """``{part: file}`` for the parts ``directory`` has its own file for."""
    if directory is None:
        return {}
    return {part: directory / name for part, name in FILES.items() if (directory / name).is_file()}


def from_directory(
    directory: Path | None, samples: Iterable[Mapping[str, Any]]
) -> MailTemplates | None:
    """The shipped templates with ``directory``'s files of the same names, tried on
    ``samples``; ``None`` when it has none. Raises :class:`FieldProblem` on ``templates``."""
    files = overrides(directory)
    if not files:
        return None
    texts = {part: path.read_text(encoding="utf-8") for part, path in files.items()}
    templates = replace(shipped(), **texts)
    problem = check(templates, samples)
    if problem is not None:
        part = problem.split(":", 1)[0]
        raise FieldProblem("templates", f"{problem} (in {files[part]})")
    return templates


def for_channel(
    base: MailTemplates | None,
    keys: Mapping[str, str | None],
    base_dir: Path,
    samples: Iterable[Mapping[str, Any]],
) -> MailTemplates | None:
    """``base`` (the section's, or the shipped ones) with the parts a channel's
    :data:`CHANNEL_KEYS` give (files relative to ``base_dir``), tried on ``samples``;
    ``None`` when ``base`` is too. Raises :class:`FieldProblem` naming the key."""
    if keys.get("body_template") is not None and keys.get("body_template_file") is not None:
        raise FieldProblem("body_template", "give body_template or body_template_file")
    own = {
        _INLINE.get(key) or _FILES[key]: (key, *_read(key, value, base_dir))
        for key, value in keys.items()
        if value is not None
    }
    if not own:
        return base
    templates = replace(base or shipped(), **{part: text for part, (_, _, text) in own.items()})
    problem = check(templates, samples)
    if problem is not None:
        key, path, _ = own.get(problem.split(":", 1)[0], next(iter(own.values())))
        raise FieldProblem(key, problem + (f" (in {path})" if path else ""))
    return templates


def _read(key: str, value: str, base_dir: Path) -> tuple[Path | None, str]:
    """``(file, text)`` of a channel's template key: inline text has no file."""
    return (None, value) if key in _INLINE else read_template(key, value, base_dir)


def render(templates: MailTemplates, payload: Mapping[str, Any]) -> MailParts:
    """The parts ``templates`` make for ``payload``; raises :class:`TemplateProblem`
    whose reason starts with the part (``subject: …``)."""
    subject = one_line(_part("subject", templates.subject, payload))[:MAX_SUBJECT]
    context = {**payload, "subject": subject}
    text = _part("text", templates.text, context)
    html = None if templates.html is None else _part("html", templates.html, context)
    return MailParts(subject, text, html)


def _part(part: str, source: str, context: Mapping[str, Any]) -> str:
    try:
        return render_source(source, context, html=part == "html")
    except TemplateProblem as exc:
        raise TemplateProblem(f"{part}: {exc.reason}") from None


def check(templates: MailTemplates, payloads: Iterable[Mapping[str, Any]]) -> str | None:
    """Why ``templates`` cannot make an email for one of ``payloads`` (``part: reason``),
    or ``None``."""
    try:
        for payload in payloads:
            render(templates, payload)
    except TemplateProblem as exc:
        return exc.reason
    return None


def one_line(text: str) -> str:
    """``text`` with every run of white space (line breaks too) made one space."""
    return " ".join(text.split())
