"""The WHERE and ORDER BY of a job listing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, Text, cast, func, or_
from sqlalchemy.sql.elements import UnaryExpression

from jobyard.models import JobQuery
from jobyard.states import JobState
from jobyard.store.tables import jobs


def job_filters(query: JobQuery, dialect: str) -> list[ColumnElement[bool]]:
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
        conditions.append(_search(query.search, dialect))
    if query.since is not None:
        conditions.append(jobs.c.created_at >= query.since)
    if query.until is not None:
        conditions.append(jobs.c.created_at < query.until)
    return conditions


def _search(text: str, dialect: str) -> ColumnElement[bool]:
    """``text`` in the type, name or arguments, whatever the case, and nothing else
    ignored: the same jobs on every backend (and the memory store)."""
    term = text.lower()
    targets = (jobs.c.type, jobs.c.name, cast(jobs.c.args, Text))
    lowered = (_lowered(target, dialect, term.isascii()) for target in targets)
    return or_(*(target.contains(term, autoescape=True) for target in lowered))


def _lowered(target: ColumnElement[Any], dialect: str, ascii_term: bool) -> ColumnElement[str]:
    if dialect == "sqlite" and not ascii_term:
        # Its lower() folds ASCII letters only (É stays É), which is all an ASCII term
        # needs; Python's, on every row, takes twice as long.
        return func.jobyard_lower(target, type_=String)
    lowered = func.lower(target, type_=String)
    if dialect in ("mysql", "mariadb"):
        # The arguments' text takes the connection's collation, which ignores accents
        # (e matched é) and weighs every character beyond the basic plane alike.
        return lowered.collate("utf8mb4_bin")
    return lowered


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
