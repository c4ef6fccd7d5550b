"""Queries of resource samples (a job's CPU and memory over time) and of SLA history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from jobyard.models import EventKind
from jobyard.states import LIVE, JobState
from jobyard.store.rows import load_json
from jobyard.store.tables import job_events, job_samples, jobs

KEEP_ATTEMPTS = 3  # samples of this many most recent attempts are kept per job
LIVE_STATES = sorted(state.value for state in LIVE)


def add(
    conn: Connection, job_id: int, attempt: int, rows: Sequence[tuple[datetime, float, int]]
) -> None:
    """Store ``(at, cpu_seconds, rss)`` samples of one attempt."""
    conn.execute(
        insert(job_samples),
        [
            {"job_id": job_id, "attempt": attempt, "at": at, "cpu_seconds": cpu, "rss": rss}
            for at, cpu, rss in rows
        ],
    )


def set_usage(conn: Connection, job_id: int, attempt: int, cpu: float, peak: int) -> None:
    """Show a live attempt's CPU time and peak memory so far on its job row."""
    conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.attempt == attempt, jobs.c.state.in_(LIVE_STATES))
        .values(cpu_seconds=cpu, peak_memory=peak or None)
    )


def thin(conn: Connection, job_id: int, attempt: int) -> int:
    """Delete every other sample of the attempt (the first and last stay); returns how many."""
    ids = list(
        conn.scalars(
            select(job_samples.c.id)
            .where(job_samples.c.job_id == job_id, job_samples.c.attempt == attempt)
            .order_by(job_samples.c.id)
        )
    )
    doomed = ids[1:-1:2]
    for start in range(0, len(doomed), 500):
        conn.execute(delete(job_samples).where(job_samples.c.id.in_(doomed[start : start + 500])))
    return len(doomed)


def forget_old_attempts(conn: Connection, job_id: int, attempt: int) -> None:
    conn.execute(
        delete(job_samples).where(
            job_samples.c.job_id == job_id, job_samples.c.attempt <= attempt - KEEP_ATTEMPTS
        )
    )


def listing(conn: Connection, job_id: int, attempt: int | None) -> list[dict[str, Any]]:
    """A job's samples in time order, of one attempt or of every kept attempt."""
    query = select(
        job_samples.c.attempt, job_samples.c.at, job_samples.c.cpu_seconds, job_samples.c.rss
    ).where(job_samples.c.job_id == job_id)
    if attempt is not None:
        query = query.where(job_samples.c.attempt == attempt)
    return [dict(row) for row in conn.execute(query.order_by(job_samples.c.id)).mappings()]


def recent_runtimes(conn: Connection, job_type: str, limit: int) -> list[float]:
    """Runtimes of the type's latest successful jobs, newest first."""
    query = (
        select(jobs.c.runtime_seconds)
        .where(
            jobs.c.type == job_type,
            jobs.c.state == JobState.SUCCEEDED.value,
            jobs.c.runtime_seconds.is_not(None),
        )
        .order_by(jobs.c.finished_at.desc())
        .limit(limit)
    )
    return [float(value) for value in conn.scalars(query)]


def breached_budgets(conn: Connection, job_id: int) -> frozenset[str]:
    """The budgets the job already breached (in any attempt): each is reported once."""
    query = select(job_events.c.data).where(
        job_events.c.job_id == job_id, job_events.c.kind == EventKind.SLA.value
    )
    return frozenset(str((load_json(data) or {}).get("budget")) for data in conn.scalars(query))
