"""Inserting new jobs: a batch with idempotency keys, a workflow's graph, a restart."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update

from jobyard.events.records import JobCreated
from jobyard.models import Dependency, Job
from jobyard.routing import route_of
from jobyard.store.rows import event_row, fetch_jobs, job_from_row
from jobyard.store.tables import job_dependencies, job_events, jobs

if TYPE_CHECKING:
    from jobyard.models import NewJob


def insert_jobs(conn: Connection, new: Sequence[NewJob], now: datetime) -> list[tuple[Job, bool]]:
    """Insert the entries whose key is free; pair every entry with its stored job.

    The caller retries the transaction when a concurrent insert wins a key.
    """
    known = _ids_by_key(conn, {job.idempotency_key for job in new if job.idempotency_key})
    fresh = _fresh_entries(new, set(known))
    ids = _insert_rows(conn, [_new_row(new[index], now) for index in fresh])
    id_of = dict(zip(fresh, ids, strict=True))
    for index, job_id in id_of.items():
        if (key := new[index].idempotency_key) is not None:
            known[key] = job_id
    entries = [
        (id_of[index], True) if index in id_of else (known[job.idempotency_key or ""], False)
        for index, job in enumerate(new)
    ]
    if ids:
        conn.execute(insert(job_events), [_created_event(new[i], id_of[i], now) for i in fresh])
        edges = [_edge(id_of[i], dep) for i in fresh for dep in new[i].depends_on]
        if edges:
            conn.execute(insert(job_dependencies), edges)
    stored = {job.id: job for job in fetch_jobs(conn, {job_id for job_id, _ in entries})}
    return [(stored[job_id], created) for job_id, created in entries]


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
        _new_row(job, now) | columns | {"deps_pending": n}
        for job, n in zip(new, waits, strict=True)
    ]
    ids = _insert_rows(conn, rows)
    if not ids:
        return []
    created = [_created_event(job, i, now) for job, i in zip(new, ids, strict=True)]
    conn.execute(insert(job_events), created)
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
        conn.execute(insert(job_dependencies), rows)
    by_id = {job.id: job for job in fetch_jobs(conn, ids)}
    return [by_id[i] for i in ids]


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
    statement = insert(jobs).returning(jobs.c.id, sort_by_parameter_order=True)
    return list(conn.scalars(statement, rows))


def _new_row(job: NewJob, now: datetime) -> dict[str, Any]:
    return {
        "type": job.type,
        "name": job.name,
        "args": job.args,
        "spec": job.spec.to_dict(),
        "queue": job.queue,
        "priority": job.priority,
        "state": job.state.value,
        "created_at": now,
        "updated_at": now,
        "run_at": job.run_at,
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
        "route": route_of(job.spec.tags),
    }


def _edge(job_id: int, dependency: Dependency) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "upstream_id": dependency.upstream,
        "condition": dependency.condition.value,
        "met": dependency.met,
    }


def _created_event(job: NewJob, job_id: int, now: datetime) -> dict[str, Any]:
    return event_row(job_id, JobCreated(at=now, state=job.state))
