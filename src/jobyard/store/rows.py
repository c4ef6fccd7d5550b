"""Rows to domain objects and domain values to column values."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Exists,
    Update,
    bindparam,
    false,
    select,
    update,
)

from jobyard.events.records import JobEvent, LogWritten, Record, unmarshal
from jobyard.models import EventKind, Job, JobSpec, WorkerInfo
from jobyard.states import Control, JobState
from jobyard.store.tables import job_dependencies, jobs

_JSON_FIELDS = ("args", "metrics", "details")
_CHUNK = 500  # ids per IN list, well under every backend's bound-parameter limit
_WRITABLE = frozenset(jobs.c.keys()) - {"id"}


def load_json(value: Any) -> Any:
    """Decode a JSON column value (some MySQL drivers hand back the text)."""
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


def job_from_row(row: Mapping[Any, Any]) -> Job:
    """A :class:`Job` from a ``jobs`` row (its columns are the Job's fields)."""
    data = dict(row)
    for name in _JSON_FIELDS:
        data[name] = load_json(data[name]) or {}
    data["spec"] = JobSpec.from_dict(load_json(data["spec"]))
    data["state"] = JobState(data["state"])
    data["control"] = Control(data["control"]) if data["control"] else None
    return Job.from_fields(data)


def event_from_row(row: Mapping[Any, Any]) -> JobEvent:
    """A stored record; a log line's is in the ``seq``, ``stream`` and ``line`` columns."""
    if row["kind"] == EventKind.LOG:
        return JobEvent(row["id"], row["job_id"], log_from_row(row))
    record = unmarshal(row["kind"], row["at"], load_json(row["data"]) or {})
    return JobEvent(row["id"], row["job_id"], record)


def log_from_row(row: Mapping[Any, Any]) -> LogWritten:
    return LogWritten(at=row["at"], seq=row["seq"], stream=row["stream"], line=row["line"])


def worker_from_row(row: Mapping[Any, Any]) -> WorkerInfo:
    data = dict(row)
    data["queues"] = list(load_json(data["queues"]))
    data["tags"] = list(load_json(data["tags"]) or [])
    if data["lease_timeout"] is None:  # a row of a worker older than the column
        del data["lease_timeout"]
    return WorkerInfo(**data)


def job_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for an UPDATE of ``jobs`` from values keyed by Job field names.

    Enums are stored by value and a :class:`JobSpec` as its dict. Raises
    ``ValueError`` for a name that is not a writable column.
    """
    unknown = set(values) - _WRITABLE
    if unknown:
        raise ValueError(f"not writable job fields: {sorted(unknown)}")
    return {name: _column_value(value) for name, value in values.items()}


def _column_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, JobSpec):
        return value.to_dict()
    return value


@functools.cache
def update_by_id(columns: frozenset[str]) -> Update:
    """``UPDATE jobs SET <columns> WHERE id = :job_id``, built once per set of columns.

    Its parameters are :func:`by_id`'s. Building a statement costs more than running
    it on SQLite, and a job's writes come in a few shapes only.
    """
    values = {jobs.c[name]: bindparam(f"v_{name}", type_=jobs.c[name].type) for name in columns}
    return update(jobs).where(jobs.c.id == bindparam("job_id")).values(values)


def by_id(job_id: int, columns: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of :func:`update_by_id` for ``columns`` (column values)."""
    return {"job_id": job_id} | {f"v_{name}": value for name, value in columns.items()}


def event_row(job_id: int, record: Record) -> dict[str, Any]:
    """A ``job_events`` row: the payload, or for a log line its columns."""
    row = {"job_id": job_id, "kind": record.kind.value, "at": record.at}
    if isinstance(record, LogWritten):
        return row | {"seq": record.seq, "stream": record.stream, "line": record.line}
    return row | {"data": record.marshal()}


_EVENT_COLUMNS = dict.fromkeys(("seq", "stream", "line", "data"))


def whole_event_row(job_id: int, record: Record) -> dict[str, Any]:
    """An event row with every column, so that lines and events share one executemany."""
    return _EVENT_COLUMNS | event_row(job_id, record)


def fetch_jobs(conn: Connection, ids: Iterable[int]) -> list[Job]:
    """The jobs with these ids, in the order of ``ids`` (missing ones left out)."""
    wanted = list(ids)
    found: dict[int, Job] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        for row in conn.execute(select(jobs).where(jobs.c.id.in_(chunk))).mappings():
            found[row["id"]] = job_from_row(row)
    return [found[job_id] for job_id in wanted if job_id in found]


def jobs_where(
    conn: Connection, *where: ColumnElement[bool], skip_locked: bool = False
) -> list[Job]:
    """The jobs matching ``where``, by id; with ``skip_locked``, less those whose row
    another session holds (locked until the transaction ends)."""
    query = select(jobs).where(*where).order_by(jobs.c.id)
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return [job_from_row(row) for row in conn.execute(query).mappings()]


def is_awaited() -> Exists:
    """Whether a job waits for the job of the enclosing ``jobs`` row (an unmet edge)."""
    edges = job_dependencies.c
    return (
        select(edges.upstream_id)
        .where(edges.upstream_id == jobs.c.id, edges.met == false())
        .exists()
    )


ID_MAX = 2**63 - 1  # ids are 64-bit: a larger one (or one below 1) is no row's


def possible_id(value: int) -> bool:
    """Whether ``value`` can be a row's id: looking up another fails on some databases
    (out of range on PostgreSQL, an overflow in SQLite's driver) where it is only absent."""
    return 1 <= value <= ID_MAX
