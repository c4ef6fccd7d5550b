"""The WHERE and ORDER BY of a job listing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Dialect,
    String,
    Text,
    and_,
    cast,
    false,
    func,
    literal,
    or_,
    true,
)
from sqlalchemy.sql.elements import UnaryExpression

from jobyard.models import JobQuery, order_keys
from jobyard.states import JobState
from jobyard.store.tables import jobs
from jobyard.text import FINAL_SIGMA, SIGMA, as_in_json, fold


def job_filters(query: JobQuery, dialect: Dialect) -> list[ColumnElement[bool]]:
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


def _search(text: str, dialect: Dialect) -> ColumnElement[bool]:
    """``text`` in the type, name or arguments, whatever the case.

    The arguments are searched in their JSON text, keys and punctuation included (no
    JSON function walks the values alike on every database): the term is looked for as
    JSON writes it inside a string, so a quote, a backslash or a tab in it is found in
    a value (``say "hi"`` as ``say \\"hi\\"``), and JSON's own escapes are not found by
    their text (``q\\"uote`` does not find ``q"uote``).
    """
    args = cast(jobs.c.args, Text)
    found = [folded_contains(target, text, dialect) for target in (jobs.c.type, jobs.c.name)]
    return or_(*found, folded_contains(args, as_in_json(text), dialect))


def folded_contains(target: ColumnElement[Any], text: str, dialect: Dialect) -> ColumnElement[bool]:
    """Whether ``text`` is in ``target`` whatever the case of either, and nothing else
    ignored (accents count, and ``%`` or ``_`` are themselves).

    The case of both is folded by one function, each character on its own: the text a
    term was copied from always holds it, and the backends find the same rows.
    PostgreSQL's ``lower()`` (over a Unicode ctype, such as C.UTF-8), MariaDB's in its
    newest Unicode collation, and :func:`jobyard.text.fold` on SQLite (whose own folds
    ASCII only) and in the memory store agree but for letters of a newer Unicode than a
    database knows (MariaDB before 10.10 knows 5.2); a final sigma is the plain one.
    """
    name = dialect.name
    if name == "sqlite":
        if text.isascii():  # its lower() is enough, and twice as fast as a Python call a row
            # but for the two letters whose lowercase is ASCII: İ and the Kelvin sign
            ascii_lower = func.replace(func.replace(target, "\u0130", "i"), "\u212a", "k")
            return func.lower(ascii_lower, type_=String).contains(text.lower(), autoescape=True)
        lowered = func.jobyard_lower(target, type_=String)
        return lowered.contains(fold(text), autoescape=True)
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    term = literal(escaped, String)
    if name == "postgresql":
        return _folded(target).contains(_folded(term), escape="/")
    # MariaDB and MySQL fold case by the collation; compared in the binary one, where
    # an accent and each character beyond the basic plane are told apart.
    collation = _fold_collation(dialect)
    column = _folded(target.collate(collation)).collate("utf8mb4_bin")
    within = _folded(term.collate(collation)).collate("utf8mb4_bin")
    return column.contains(within, escape="/")


def _folded(text: ColumnElement[Any]) -> ColumnElement[str]:
    """``lower(text)`` as :func:`jobyard.text.fold` writes it: İ as i first (a full case
    mapping, PostgreSQL's with ICU, writes i and a dot), a final sigma as the plain one."""
    lowered = func.lower(func.replace(text, "\u0130", "i", type_=String), type_=String)
    return func.replace(lowered, FINAL_SIGMA, SIGMA, type_=String)


def _fold_collation(dialect: Dialect) -> str:
    version = dialect.server_version_info or ()
    if getattr(dialect, "is_mariadb", False):
        return "utf8mb4_uca1400_ai_ci" if version >= (10, 10) else "utf8mb4_unicode_520_ci"
    return "utf8mb4_0900_ai_ci" if version >= (8, 0) else "utf8mb4_unicode_520_ci"


def job_order(sort: Sequence[str]) -> list[UnaryExpression[Any]]:
    """ORDER BY terms for ``sort`` ("x" ascending, "-x" descending), ties broken by id.

    NULLs sort as if larger than any value, on every backend (PostgreSQL's rule).
    Names are not checked here: the caller allows only sortable columns.
    """
    terms: list[UnaryExpression[Any]] = []
    for key in order_keys(sort):
        column, descending = jobs.c[key.removeprefix("-")], key.startswith("-")
        if column.nullable:
            is_null = column.is_(None)
            terms.append(is_null.desc() if descending else is_null.asc())
        terms.append(column.desc() if descending else column.asc())
    return terms


def job_after(sort: Sequence[str], values: Sequence[Any]) -> ColumnElement[bool]:
    """The rows that :func:`job_order` puts after a row with these ``values`` of
    :func:`order_keys`: later in the first key, or equal in it and later in the next..."""
    later: list[ColumnElement[bool]] = []
    ties: list[ColumnElement[bool]] = []
    for key, value in zip(order_keys(sort), values, strict=True):
        column, descending = jobs.c[key.removeprefix("-")], key.startswith("-")
        if (beyond := _beyond(column, value, descending)) is not None:
            later.append(and_(*ties, beyond))
        ties.append(column.is_(None) if value is None else column == value)
    # The first key's bound again on its own: an index of it reads only from there (SQLite
    # scanned and sorted the rows of each branch of the OR: 22 ms, not 1, at 100,000 jobs)
    first = order_keys(sort)[0]
    bound = _from(jobs.c[first.removeprefix("-")], values[0], first.startswith("-"))
    return and_(true() if bound is None else bound, or_(false(), *later))


def _from(column: Column[Any], value: Any, descending: bool) -> ColumnElement[bool] | None:
    """The values of ``column`` sorted at ``value`` or after it (None: all of them)."""
    if descending:
        return None if value is None else column <= value
    if value is None:
        return column.is_(None)
    return or_(column >= value, column.is_(None)) if column.nullable else column >= value


def _beyond(column: Column[Any], value: Any, descending: bool) -> ColumnElement[bool] | None:
    """The values of ``column`` sorted after ``value``, NULL being the largest."""
    if descending:
        return column.is_not(None) if value is None else column < value
    if value is None:
        return None  # nothing is larger
    return or_(column > value, column.is_(None)) if column.nullable else column > value
