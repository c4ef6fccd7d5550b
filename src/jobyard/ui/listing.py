"""The job list's filter, read from and written back to the query string (bookmarkable)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from jobyard.models import SORTABLE, JobQuery
from jobyard.states import JobState

PER_PAGE = (25, 50, 100, 200)
STATES = [state.value for state in JobState]


@dataclass(frozen=True)
class JobFilter:
    """What ``/jobs?state=failed&type=etl&sort=-created_at&page=2`` asks for."""

    states: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()
    search: str = ""
    sort: str = "-created_at"
    page: int = 1
    per_page: int = 50
    problems: tuple[str, ...] = ()  # what was ignored, said on the page

    @classmethod
    def of(cls, params: QueryParams) -> JobFilter:
        problems: list[str] = []
        states = _names(params, "state")
        if unknown := [s for s in states if s not in STATES]:
            problems.append(f"unknown state {unknown[0]!r} ignored")
            states = [s for s in states if s in STATES]
        sort = params.get("sort") or "-created_at"
        if sort.removeprefix("-") not in SORTABLE:
            problems.append(f"cannot sort by {sort!r}; sorted by creation")
            sort = "-created_at"
        per_page = number(params.get("per_page"), 50)
        return cls(
            states=tuple(states),
            types=tuple(_names(params, "type")),
            queues=tuple(_names(params, "queue")),
            workers=tuple(_names(params, "worker")),
            search=(params.get("search") or "").strip()[:200],
            sort=sort,
            page=number(params.get("page"), 1),
            per_page=per_page if per_page in PER_PAGE else 50,
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
