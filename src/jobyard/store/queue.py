"""Claiming and promoting jobs: a locking read, then an update of what it locked.

PostgreSQL and MariaDB lock the selected rows with ``FOR UPDATE SKIP LOCKED``, so
concurrent claimers take disjoint sets. SQLite ignores the clause; there the
transaction began with ``BEGIN IMMEDIATE`` and already holds the only write lock.
MariaDB refuses ``UPDATE … WHERE id IN (SELECT … LIMIT)``, hence two statements.
Which rows the claim may lock — routing tags, cluster-wide ``max_running`` — is
decided in :mod:`jobyard.store.slots`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, insert, or_, select, true, update

from jobyard.events.records import JobClaimed, JobPromoted
from jobyard.models import Job
from jobyard.routing import routes_for
from jobyard.states import JobState
from jobyard.store import slots
from jobyard.store.rows import event_row, fetch_jobs
from jobyard.store.tables import job_events, jobs, queue_state

QUEUED = JobState.QUEUED.value


def claim(
    conn: Connection,
    worker: str,
    host: str,
    queues: Sequence[str] | None,
    limit: int,
    now: datetime,
    lease_until: datetime,
    tags: Collection[str] = (),
) -> list[Job]:
    """Mark up to ``limit`` ready jobs as running on ``worker``; return them in claim order.

    Only jobs whose required tags are among ``tags`` are taken, within the limits.
    """
    locked = slots.lock_claimable(conn, _claimable(queues, now, routes_for(tags)), limit)
    if not locked:
        return []
    ids = [row.id for row in locked]
    conn.execute(
        update(jobs)
        .where(jobs.c.id.in_(ids), jobs.c.state == QUEUED)
        .values(_claim_values(worker, host, now, lease_until))
    )
    claimed = [job for job in fetch_jobs(conn, ids) if _claimed_by(job, worker, now)]
    if not claimed:
        return []
    claims = [
        event_row(j.id, JobClaimed(at=now, attempt=j.attempt, worker=worker)) for j in claimed
    ]
    conn.execute(insert(job_events), claims)
    waits = {row.id: _waited(row, now) for row in locked}
    conn.execute(
        update(jobs).where(jobs.c.id == bindparam("job_id")).values(wait_seconds=bindparam("wait")),
        [{"job_id": job.id, "wait": waits[job.id]} for job in claimed],
    )
    return [job.evolve(wait_seconds=waits[job.id]) for job in claimed]


def promote(conn: Connection, now: datetime) -> list[int]:
    """Queue the scheduled jobs whose ``run_at`` has come; return their ids."""
    due = (
        select(jobs.c.id)
        .where(jobs.c.state == JobState.SCHEDULED.value, jobs.c.run_at <= now)
        .order_by(jobs.c.id)
    )
    ids = _lock_ids(conn, due)
    if not ids:
        return []
    conn.execute(update(jobs).where(jobs.c.id.in_(ids)).values(state=QUEUED, updated_at=now))
    conn.execute(insert(job_events), [event_row(i, JobPromoted(at=now)) for i in ids])
    return ids


def _lock_ids(conn: Connection, query: Select[tuple[int]]) -> list[int]:
    return list(conn.scalars(query.with_for_update(skip_locked=True)))


def _waited(row: Row[Any], now: datetime) -> float:
    """Seconds since the job became ready: queued (``updated_at``) or due (``run_at``)."""
    ready: datetime = row.updated_at if row.run_at is None else max(row.updated_at, row.run_at)
    return max((now - ready).total_seconds(), 0.0)


def _claimable(queues: Sequence[str] | None, now: datetime, routes: list[str]) -> Select[Any]:
    columns = (jobs.c.id, jobs.c.updated_at, jobs.c.run_at, jobs.c.queue, jobs.c.type)
    query = select(*columns).where(
        jobs.c.state == QUEUED,
        or_(jobs.c.run_at.is_(None), jobs.c.run_at <= now),
        jobs.c.route.in_(routes),  # the routes of every subset of the worker's tags
    )
    if queues is not None:
        query = query.where(jobs.c.queue.in_(list(queues)))
    paused = select(queue_state.c.name).where(queue_state.c.paused == true())
    query = query.where(jobs.c.queue.not_in(paused))  # a paused queue starts nothing new
    return query.order_by(jobs.c.priority.desc(), jobs.c.id.asc())


def _claim_values(worker: str, host: str, now: datetime, lease_until: datetime) -> dict[str, Any]:
    return {
        "state": JobState.RUNNING.value,
        "worker": worker,
        "host": host,
        "pid": None,
        "control": None,
        "started_at": now,
        "finished_at": None,
        "paused_at": None,
        "paused_seconds": 0.0,
        "attempt": jobs.c.attempt + 1,
        "lease_expires_at": lease_until,
        "updated_at": now,
    }


def _claimed_by(job: Job, worker: str, now: datetime) -> bool:
    # Guards against a row the UPDATE skipped because it was no longer queued.
    return job.state is JobState.RUNNING and job.worker == worker and job.started_at == now
