"""Writes made for a job lock its row first, so they never outlive the job.

A run keeps writing a job's log lines, events and samples while it runs; the
job may be removed, or given to another attempt, at any moment. Taking the
job's row lock in the same transaction as the insert orders the write against
the removal: either it commits first and the removal deletes it along with the
rest, or the removal commits first and the write finds no row and inserts
nothing (no orphan row under a deleted id). On SQLite every writer holds the
database's write lock from its first statement, which orders them as well.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, select

from jobyard.models import Job
from jobyard.store.rows import job_from_row
from jobyard.store.tables import jobs


def holds(
    conn: Connection, job_id: int, *, worker: str | None = None, attempt: int | None = None
) -> bool:
    """Lock the job's row; True when it exists (run by ``worker``, at ``attempt``, if given)."""
    query = select(jobs.c.worker, jobs.c.attempt).where(jobs.c.id == job_id).with_for_update()
    row = conn.execute(query).first()
    if row is None:
        return False
    return (worker is None or row.worker == worker) and (attempt is None or row.attempt == attempt)


def lock_jobs(conn: Connection, job_ids: Sequence[int]) -> dict[int, Job]:
    """Lock the rows of these jobs, in id order (no deadlock between two such locks)."""
    rows = conn.execute(_LOCK_JOBS, {"ids": list(job_ids)}).mappings()
    return {row["id"]: job_from_row(row) for row in rows}


#: The rows of the jobs ``ids``, in id order: what :func:`lock_jobs` locks.
JOBS_BY_IDS = (
    select(jobs).where(jobs.c.id.in_(bindparam("ids", expanding=True))).order_by(jobs.c.id)
)
_LOCK_JOBS = JOBS_BY_IDS.with_for_update()
