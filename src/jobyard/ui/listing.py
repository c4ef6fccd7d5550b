"""The job list's filter, read from and written back to the query string (bookmarkable)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from jobyard.durations import parse_moment
from jobyard.models import SORTABLE, JobQuery
from jobyard.states import JobState
from jobyard.text import text_problem

PER_PAGE = (25, 50, 100, 200)
STATES = [state.value for state in JobState]


@dataclass(frozen=True)
class JobFilter:
    """What ``/jobs?state=failed&type=etl&since=6h&sort=-created_at&page=2`` asks for.

    ``since`` and ``until`` bound the jobs' creation: a time (``2026-12-01``,
    ``2026-12-01T10:00``, in UTC unless it says otherwise) or a duration ago (``6h``).
    They keep their text, so that a link with ``since=6h`` means the last six hours
    whenever it is opened.
    """

    states: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()
    search: str = ""
    sort: str = "-created_at"
    page: int = 1
    per_page: int = 50
    since: str = ""
    until: str = ""
    created: tuple[datetime | None, datetime | None] = (None, None)  # since, until resolved
    problems: tuple[str, ...] = ()  # what was ignored, said on the page

    @classmethod
    def of(cls, params: QueryParams, now: datetime) -> JobFilter:
        params, problems = _storable(params)
        states = _names(params, "state")
        if unknown := [s for s in states if s not in STATES]:
            problems.append(f"unknown state {unknown[0]!r} ignored")
            states = [s for s in states if s in STATES]
        sort = params.get("sort") or "-created_at"
        if sort.removeprefix("-") not in SORTABLE:
            problems.append(f"cannot sort by {sort!r}; sorted by creation")
            sort = "-created_at"
        per_page = number(params.get("per_page"), 50)
        if params.get("per_page") and number(params.get("per_page"), 0) not in PER_PAGE:
            offered = ", ".join(str(n) for n in PER_PAGE)
            problems.append(
                f"per page {params['per_page']!r} is not offered ({offered}); 50 a page shown"
            )
        if params.get("page") and number(params.get("page"), 0) == 0:
            problems.append(f"no page {params['page']!r}; the first one shown")
        bounds = {}
        for key in ("since", "until"):
            text = (params.get(key) or "").strip()[:40]
            moment = moment_of(text, now) if text else None
            if text and moment is None:
                problems.append(
                    f"{key} {text!r} is not a time (2026-12-01, 2026-12-01T10:00) "
                    "or a duration ago (6h, 2d); ignored"
                )
                text = ""
            bounds[key] = (text, moment)
        return cls(
            states=tuple(states),
            types=tuple(_names(params, "type")),
            queues=tuple(_names(params, "queue")),
            workers=tuple(_names(params, "worker")),
            search=(params.get("search") or "").strip()[:200],
            sort=sort,
            page=number(params.get("page"), 1),
            per_page=per_page if per_page in PER_PAGE else 50,
            since=bounds["since"][0],
            until=bounds["until"][0],
            created=(bounds["since"][1], bounds["until"][1]),
            problems=tuple(problems),
        )

    def query(self) -> JobQuery:
        return JobQuery(
            page=self.page,
            per_page=self.per_page,
            sort=[self.sort],
            search=self.search or None,
            states=[JobState(s) for s in self.states],
            types=self.types,
            queues=self.queues,
            workers=self.workers,
            since=self.created[0],
            until=self.created[1],
        )

    def link(self, **changes: Any) -> str:
        """``/jobs`` with this filter, ``changes`` applied (a new filter starts at page 1)."""
        changed = dataclasses.replace(self, **({"page": 1} | changes))
        pairs = {
            "state": ",".join(changed.states),
            "type": ",".join(changed.types),
            "queue": ",".join(changed.queues),
            "worker": ",".join(changed.workers),
            "search": changed.search,
            "since": changed.since,
            "until": changed.until,
            "sort": "" if changed.sort == "-created_at" else changed.sort,
            "per_page": "" if changed.per_page == 50 else str(changed.per_page),
            "page": "" if changed.page == 1 else str(changed.page),
        }
        query = urlencode({k: v for k, v in pairs.items() if v})
        return "/jobs" + (f"?{query}" if query else "")

    def page_link(self, number: int) -> str:
        return self.link(page=number)

    def sorted_by(self, column: str) -> str:
        """The link of a column header: by it descending, or ascending when it already is."""
        return self.link(sort=column if self.sort == f"-{column}" else f"-{column}")


def _storable(params: QueryParams) -> tuple[QueryParams, list[str]]:
    """``params`` without the values no database can store (a NUL in the search box),
    and a note of each: the page reads its query itself (``reads_own_query``)."""
    kept: list[tuple[str, str]] = []
    problems: list[str] = []
    for key, value in params.multi_items():
        message = text_problem(key) or text_problem(value)
        if message is None:
            kept.append((key, value))
        else:
            problems.append(f"{ascii(key)[1:-1]} {value[:40]!r} {message}; ignored")
    return QueryParams(kept), problems


def _names(params: QueryParams, key: str) -> list[str]:
    values = params.getlist(key)
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def number(text: str | None, default: int = 1) -> int:
    """A page number (or size) from the query string; ``default`` for anything else.

    ASCII digits only, and at most six: ``isdigit`` also holds for ``²``, which
    ``int`` refuses, and ``int`` refuses a string of thousands of digits too.
    """
    if not text or len(text) > 6 or not (text.isascii() and text.isdigit()):
        return default
    return int(text) or default


def moment_of(text: str, now: datetime) -> datetime | None:
    """``text`` as a time in UTC: ISO 8601 (a date, or a date and time; UTC unless it
    names its offset), or a duration ago (``6h``, ``1d12h``); None for anything else."""
    try:
        return parse_moment(text, now, zone=UTC)  # a bare number: no duration here
    except ValueError:
        return None
