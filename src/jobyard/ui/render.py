"""Templates and the filters they use; a page, or only its live part for htmx."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shlex
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from jobyard import __version__
from jobyard.clock import utcnow
from jobyard.units import duration, size
from jobyard.worker.sla import overrun

if TYPE_CHECKING:  # the viewer module imports the API, which imports the login page here
    from jobyard.ui.viewer import Viewer

HERE = Path(__file__).parent
STATIC = HERE / "static"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """``moment`` relative to now, in words ("3 min ago", "in 2 h")."""
    if moment is None:
        return "—"
    seconds = ((now or utcnow()) - moment).total_seconds()
    words = duration(abs(seconds), coarse=True)
    return f"{words} ago" if seconds >= 0 else f"in {words}"


def since(moment: datetime | None, now: datetime | None = None) -> float:
    """Seconds from ``moment`` to now (negative: it is to come), for a page to count on."""
    return 0.0 if moment is None else ((now or utcnow()) - moment).total_seconds()


def stamp(moment: datetime | None) -> str:
    """A UTC time as ``2026-12-01 13:05:02``."""
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


# Characters that reorder or hide the text around them (bidirectional controls, zero
# widths): a value shows them as escapes, so that what is shown is what was sent.
_HIDDEN = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def pretty(value: Any) -> str:
    """``value`` as indented JSON, its text as written (not ``\\u`` escapes) but for
    the characters that would reorder or hide what is around them."""
    text = json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    return _HIDDEN.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


# A terminal's control sequences: colours and cursor moves (CSI), titles (OSC),
# character sets and the other short escapes. The page shows text, not a terminal
# (job.js does the same to the lines it adds).
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()*+][ -~]|\x1b[@-Z\\-_]"
)


def terminal_text(line: str) -> str:
    """A log line as a terminal leaves it: without its control sequences, and of a line
    rewritten in place (``50%\r100%``, a progress bar) the last writing only."""
    bare = _ANSI.sub("", line).rstrip("\r")
    return bare.rpartition("\r")[2]


@functools.cache
def static_url(path: str) -> str:
    """The address of a static file, named by its content: a browser that kept an older
    one (the version is not bumped with each change) fetches the new one."""
    digest = hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:12]
    return f"/static/{path}?v={digest}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ago=ago,
        since=since,
        duration=duration,
        size=size,
        stamp=stamp,
        pretty=pretty,
        shell=shlex.join,
        terminal=terminal_text,
    )
    env.filters["iso"] = lambda m: "" if m is None else m.isoformat()
    env.globals["static"] = static_url
    env.globals["overrun"] = overrun
    env.globals["version"] = __version__
    return env


ENV = _environment()


def fragment(name: str, **context: Any) -> str:
    """One template rendered on its own (a page's live part)."""
    return ENV.get_template(name).render(**context)


def page(
    request: Request,
    looker: Viewer,
    template: str,
    *,
    part: str | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """``template`` as a whole page, or, for an htmx request, only its live ``part``."""
    values = {"request": request, "viewer": looker, "path": request.url.path, **context}
    if part is not None and request.headers.get("HX-Request"):
        return HTMLResponse(fragment(part, **values), status_code=status)
    if "events_after" not in values:
        values["events_after"] = stream_start(request)
    return HTMLResponse(ENV.get_template(template).render(**values), status_code=status)


def blank_fields(request: Request) -> bool:
    """Whether a page's address has an empty parameter (``?state=&queue=``), as a filter
    form's "Show" sends every field, "any" as an empty one: such a page answers with a
    redirect to the filter's own address, which is what is kept and bookmarked."""
    if request.headers.get("HX-Request"):
        return False
    return any(value == "" for _, value in request.query_params.multi_items())


def stream_start(request: Request) -> int:
    """Where the page's event stream starts: read by the viewer's check, before the page
    read anything the stream updates; else now (a live part, a page answering a form's
    post), which a page reads before what the stream updates."""
    after: int | None = getattr(request.state, "events_after", None)
    return request.app.state.node.store.events.last_event_id() if after is None else after


def path_id(text: str) -> int | None:
    """An id from a page's address (``/jobs/12``), or None when it is not one: such a page
    says that nothing is there, as for an id that no row has."""
    digits = text.isascii() and text.isdigit() and len(text) <= 20  # ids fit in 64 bits
    return int(text) if digits else None


def missing(request: Request, looker: Viewer, what: str) -> HTMLResponse:
    """A page about something that is not there (404)."""
    return page(request, looker, "missing.html", status=404, what=what)
