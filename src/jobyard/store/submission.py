"""Inserting new jobs: a batch with idempotency keys, a workflow's graph, a restart."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime
from functools import cache, lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Insert,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.schema import Table

from jobyard.events.records import JobCreated
from jobyard.models import Dependency, Job
from jobyard.routing import route_of
from jobyard.states import JobState
from jobyard.store.coltypes import UTCDateTime, naive_utc
from jobyard.store.rows import event_row, fetch_jobs, job_from_row
from jobyard.store.tables import job_dependencies, job_events, jobs

if TYPE_CHECKING:
    from jobyard.models import NewJob

_Time = TypeVar("_Time", datetime, datetime | None)

# Built once: executing the same statement object reuses its compiled form.
_INSERT_JOBS = insert(jobs).returning(jobs.c.id, sort_by_parameter_order=True)
# SQLite: the new jobs' ids are the highest ones (see _insert_rows).
_NEWEST_JOB_IDS = select(jobs.c.id).order_by(jobs.c.id.desc()).limit(bindparam("count"))
_INSERT_EVENTS = insert(job_events)
_INSERT_EDGES = insert(job_dependencies)


def insert_jobs(conn: Connection, new: Sequence[NewJob], now: datetime) -> list[tuple[Job, bool]]:
    """Insert the entries whose key is free; pair every entry with its stored job.

    The caller retries the transaction when a concurrent insert wins a key.
    """
    known = _ids_by_key(conn, {job.idempotency_key for job in new if job.idempotency_key})
    fresh = _fresh_entries(new, set(known))
    rows = _new_rows([new[index] for index in fresh], now)
    ids = _insert_rows(conn, rows)
    # The new jobs are what was just inserted: no need to read them back.
    created = {
        index: _inserted(job_id, row, new[index])
        for index, job_id, row in zip(fresh, ids, rows, strict=True)
    }
    if ids:
        _insert_events(conn, _created_events(created.values()))
        edges = [_edge(created[i].id, dep) for i in fresh for dep in new[i].depends_on]
        if edges:
            conn.execute(_INSERT_EDGES, edges)
    stored = fetch_jobs(conn, known.values())  # the jobs whose keys were taken before
    by_key = {job.idempotency_key: job for job in [*created.values(), *stored]}
    return [
        (created[index], True) if index in created else (by_key[job.idempotency_key or ""], False)
        for index, job in enumerate(new)
    ]


def insert_restart(
    conn: Connection, old_id: int, new: NewJob, now: datetime
) -> tuple[Job, bool] | None:
    """Insert ``new`` and link the terminal job ``old_id`` to it, unless it was restarted.

    The old job's row is locked first, so a concurrent restart waits here and then
    finds ``restarted_as`` set.
    """
    query = select(jobs).where(jobs.c.id == old_id).with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        return None
    old = job_from_row(row)
    if old.restarted_as is not None or not old.state.terminal:
        return old, False
    [(job, _)] = insert_jobs(conn, [new], now)
    link = {"restarted_as": job.id, "updated_at": now}
    conn.execute(update(jobs).where(jobs.c.id == old_id).values(link))
    return job, True


def insert_graph(
    conn: Connection,
    new: Sequence[NewJob],
    edges: Sequence[tuple[int, int]],
    now: datetime,
    **columns: Any,
) -> list[Job]:
    """Insert jobs linked by ``edges`` (indexes into ``new``: waiting, upstream)."""
    waits = [0] * len(new)
    for waiting, _ in edges:
        waits[waiting] += 1
    rows = [
        row | columns | {"deps_pending": n}
        for row, n in zip(_new_rows(new, now), waits, strict=True)
    ]
    ids = _insert_rows(conn, rows)
    if not ids:
        return []
    created = [_inserted(job_id, row, job) for job, job_id, row in zip(new, ids, rows, strict=True)]
    _insert_events(conn, _created_events(created))
    if edges:
        rows = [
            {
                "job_id": ids[waiting],
                "upstream_id": ids[upstream],
                "condition": "succeeded",
                "met": False,
            }
            for waiting, upstream in edges
        ]
        conn.execute(_INSERT_EDGES, rows)
    return created


def _fresh_entries(new: Sequence[NewJob], taken: set[str]) -> list[int]:
    """Indexes of the entries to insert: no key, or a key neither stored nor seen before."""
    fresh = []
    for index, job in enumerate(new):
        key = job.idempotency_key
        if key is None or key not in taken:
            fresh.append(index)
            if key is not None:
                taken.add(key)
    return fresh


def _ids_by_key(conn: Connection, keys: Collection[str]) -> dict[str, int]:
    if not keys:
        return {}
    query = select(jobs.c.idempotency_key, jobs.c.id).where(jobs.c.idempotency_key.in_(keys))
    return {key: job_id for key, job_id in conn.execute(query)}


def _insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert in batches; the new ids come back in the order of ``rows``."""
    if not rows:
        return []
    if conn.dialect.name == "sqlite":
        # Under the write lock (BEGIN IMMEDIATE) nobody else inserts, and the rows of
        # one INSERT get ascending ids in their order, above every id there was: the
        # highest ids now are theirs.
        conn.exec_driver_sql(*_sqlite_insert(conn, jobs, rows))
        return sorted(conn.scalars(_NEWEST_JOB_IDS, {"count": len(rows)}))
    if conn.dialect.name == "postgresql":
        statement = _populate(jobs, tuple(rows[0])).returning(jobs.c.id)
        return sorted(conn.scalars(statement, {"rows": _json_records(jobs, rows)}))
    return list(conn.scalars(_INSERT_JOBS, rows))


@cache
def _populate(table: Table, columns: tuple[str, ...]) -> Insert:
    """PostgreSQL: insert the rows given as one JSON array, in its order.

    A multi-row ``VALUES`` has a placeholder per value (25,000 for 1,000 jobs), and
    psycopg parses a query that long anew each time (it caches short ones only):
    that took ten times the client's CPU of this; an ``executemany`` of 1,000 rows
    binds each one's values in Python. As with ``VALUES ... ORDER BY``, which
    SQLAlchemy sends, the ids are handed out in the order of the rows.
    """
    rows = bindparam("rows", type_=JSON)
    like: ColumnElement[Any] = literal_column(f"NULL::{table.name}")  # its row type
    records = func.json_populate_recordset(like, rows).table_valued(
        *columns, with_ordinality="ordinality"
    )
    ordered = select(*(records.c[name] for name in columns)).order_by(records.c.ordinality)
    return insert(table).from_select(columns, ordered)


def _json_records(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` as the JSON that ``json_populate_recordset`` reads back into their columns:
    times as naive UTC text, each time object converted once (the rows share the batch's)."""
    times = [name for name in rows[0] if isinstance(table.c[name].type, UTCDateTime)]
    done: dict[int, str] = {}
    return [row | {name: _time_text(row[name], done) for name in times} for row in rows]


def _time_text(value: datetime | None, done: dict[int, str]) -> str | None:
    if value is None:
        return None
    if id(value) not in done:
        done[id(value)] = naive_utc(value).isoformat()
    return done[id(value)]


def _insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(*_sqlite_insert(conn, job_events, rows))
    elif conn.dialect.name == "postgresql":
        conn.execute(
            _populate(job_events, tuple(rows[0])), {"rows": _json_records(job_events, rows)}
        )
    else:
        conn.execute(_INSERT_EVENTS, rows)


def _sqlite_insert(
    conn: Connection, table: Table, rows: list[dict[str, Any]]
) -> tuple[str, list[tuple[Any, ...]]]:
    """SQLite: an INSERT of ``rows`` (of the same keys) for one ``executemany``, and the
    values as SQLAlchemy binds them, each through its column's bind processing.

    Each value that rows share (the batch's time, a spec, a payload) is processed once.
    SQLAlchemy's own way, a statement with RETURNING, inserts row by row there and
    builds the parameters of each in Python: three times the CPU of this.
    """
    dialect = conn.dialect
    names = tuple(rows[0])
    processors = _processors(table, dialect, names)
    plain = [name for name in names if processors[name] is None]
    done: dict[str, dict[Any, Any]] = {name: {} for name in names if processors[name] is not None}
    take = itemgetter(*plain) if len(plain) > 1 else lambda row: tuple(row[n] for n in plain)
    values = [
        (*take(row), *[_bound(row[name], processors[name], seen) for name, seen in done.items()])
        for row in rows
    ]
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in [*plain, *done])
    marks = ", ".join("?" * (len(plain) + len(done)))
    return f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({marks})", values


@lru_cache(maxsize=64)
def _processors(
    table: Table, dialect: Dialect, names: tuple[str, ...]
) -> dict[str, Callable[[Any], Any] | None]:
    """The bind processing of each of ``names``' columns (built once: looking it up for
    every insert was 3 % of the embedded server's CPU for single submits)."""
    return {
        name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    }


def _bound(value: Any, process: Callable[[Any], Any] | None, done: dict[Any, Any]) -> Any:
    """``value`` as ``process`` binds it, once per object (``done``, by id: the rows keep
    every value alive meanwhile)."""
    if value is None or process is None:
        return value
    # The same for every empty object or list (each new job has its own ``{}``).
    key = id(value) if value or not isinstance(value, dict | list) else type(value)
    if key not in done:
        done[key] = process(value)
    return done[key]


def _inserted(job_id: int, row: dict[str, Any], new: NewJob) -> Job:
    """The job just inserted as ``row`` (no other column has a value yet)."""
    return Job.from_fields(
        row | {"id": job_id, "spec": new.spec, "state": new.state, "control": None}
    )


def _new_rows(new: Sequence[NewJob], now: datetime) -> list[dict[str, Any]]:
    """The rows of new jobs: jobs that share a spec (those of a type submitted without
    arguments) share its dict."""
    now = _utc(now)
    specs: dict[int, tuple[dict[str, Any], str]] = {}  # by id: ``new`` keeps them alive
    rows = []
    for job in new:
        spec = specs.get(id(job.spec))
        if spec is None:
            spec = specs[id(job.spec)] = (job.spec.to_dict(), route_of(job.spec.tags))
        rows.append(_new_row(job, now, *spec))
    return rows


def _new_row(job: NewJob, now: datetime, spec: dict[str, Any], route: str) -> dict[str, Any]:
    return {
        "type": job.type,
        "name": job.name,
        "args": job.args,
        "spec": spec,
        "queue": job.queue,
        "priority": job.priority,
        "state": job.state.value,
        "created_at": now,
        "updated_at": now,
        "run_at": _utc(job.run_at),
        "paused_seconds": 0.0,
        "attempt": 0,
        "max_attempts": job.max_attempts,
        "restart_count": 0,
        "metrics": {},
        "details": {},
        "output_bytes": 0,
        "log_lines": 0,
        "idempotency_key": job.idempotency_key,
        "restarted_from": job.restarted_from,
        "deps_pending": sum(not dependency.met for dependency in job.depends_on),
        "node": job.node,
        "workflow_run": job.workflow_run,
        "route": route,
    }


def _edge(job_id: int, dependency: Dependency) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "upstream_id": dependency.upstream,
        "condition": dependency.condition.value,
        "met": dependency.met,
    }


def _created_events(created: Iterable[Job]) -> list[dict[str, Any]]:
    """Each new job's :class:`JobCreated` row; the jobs created in one state share a payload."""
    made: dict[tuple[datetime, JobState], dict[str, Any]] = {}
    rows = []
    for job in created:
        key = (job.created_at, job.state)
        if key not in made:
            made[key] = event_row(job.id, JobCreated(at=job.created_at, state=job.state))
        rows.append(made[key] | {"job_id": job.id})
    return rows


def _utc(at: _Time) -> _Time:
    """``at`` in UTC, as it reads back; a naive time is left for the column to refuse."""
    return at if at is None or at.tzinfo is None else at.astimezone(UTC)
