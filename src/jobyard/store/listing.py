"""The WHERE and ORDER BY of a job listing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, Text, cast, func, or_
from sqlalchemy.sql.elements import UnaryExpression

from jobyard.models import JobQuery
from jobyard.states import JobState
from jobyard.store.tables import jobs


def job_filters(query: JobQuery) -> list[ColumnElement[bool]]:
    """Conditions for the filters of a listing; an empty filter selects everything."""
    conditions: list[ColumnElement[bool]] = []
    if query.states:
        conditions.append(jobs.c.state.in_([JobState(state).value for state in query.states]))
    for column, names in (
        (jobs.c.type, query.types),
        (jobs.c.queue, query.queues),
        (jobs.c.worker, query.workers),
    ):
        if names:
            conditions.append(column.in_(list(names)))
    if query.search:
        conditions.append(_search(query.search))
    if query.since is not None:
        conditions.append(jobs.c.created_at >= query.since)
    if query.until is not None:
        conditions.append(jobs.c.created_at < query.until)
    return conditions


def _search(text: str) -> ColumnElement[bool]:
    term = text.lower()
    targets = (jobs.c.type, jobs.c.name, cast(jobs.c.args, Text))
    return or_(
        *(func.lower(target, type_=String).contains(term, autoescape=True) for target in targets)
    )


def job_order(sort: Sequence[str]) -> list[UnaryExpression[Any]]:
    """ORDER BY terms for ``sort`` ("x" ascending, "-x" descending), ties broken by id.

    NULLs sort as if larger than any value, on every backend (PostgreSQL's rule).
    Names are not checked here: the caller allows only sortable columns.
    """
    terms: list[UnaryExpression[Any]] = []
    for item in sort:
        descending = item.startswith("-")
        column = jobs.c[item.removeprefix("-")]
        if column.nullable:
            is_null = column.is_(None)
            terms.append(is_null.desc() if descending else is_null.asc())
        terms.append(column.desc() if descending else column.asc())
    if not any(item.removeprefix("-") == "id" for item in sort):
        first_descending = bool(sort) and sort[0].startswith("-")
        terms.append(jobs.c.id.desc() if first_descending else jobs.c.id.asc())
    return terms
