"""Queries of the dependency edges between jobs."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from jobyard.models import Condition, Job
from jobyard.states import JobState
from jobyard.store.rows import job_from_row
from jobyard.store.tables import job_dependencies as deps
from jobyard.store.tables import jobs

REOPENABLE = (JobState.WAITING, JobState.UPSTREAM_FAILED, JobState.HELD)


@dataclass(frozen=True)
class DependencyState:
    upstream: int
    condition: Condition
    state: JobState | None  # None: the upstream job was deleted


def of_jobs(conn: Connection, job_ids: Collection[int]) -> dict[int, list[DependencyState]]:
    found: dict[int, list[DependencyState]] = {job_id: [] for job_id in job_ids}
    if not job_ids:
        return found
    query = (
        select(deps.c.job_id, deps.c.upstream_id, deps.c.condition, jobs.c.state)
        .select_from(deps.outerjoin(jobs, jobs.c.id == deps.c.upstream_id))
        .where(deps.c.job_id.in_(list(job_ids)))
        .order_by(deps.c.job_id, deps.c.upstream_id)
    )
    for job_id, upstream, condition, state in conn.execute(query):
        found[job_id].append(
            DependencyState(upstream, Condition(condition), JobState(state) if state else None)
        )
    return found


def dependents(
    conn: Connection, upstream_ids: Collection[int], states: Collection[JobState]
) -> list[Job]:
    if not upstream_ids:
        return []
    waiting = select(deps.c.job_id).where(deps.c.upstream_id.in_(list(upstream_ids)))
    query = (
        select(jobs)
        .where(jobs.c.id.in_(waiting), jobs.c.state.in_([s.value for s in states]))
        .order_by(jobs.c.id)
    )
    return [job_from_row(row) for row in conn.execute(query).mappings()]


def states(conn: Connection, job_ids: Collection[int]) -> dict[int, JobState]:
    if not job_ids:
        return {}
    query = select(jobs.c.id, jobs.c.state).where(jobs.c.id.in_(list(job_ids)))
    return {job_id: JobState(state) for job_id, state in conn.execute(query)}


def repoint(conn: Connection, old: int, new: int) -> list[int]:
    not_run = select(jobs.c.id).where(jobs.c.state.in_([s.value for s in REOPENABLE]))
    moved = [
        job_id
        for (job_id,) in conn.execute(
            select(deps.c.job_id).where(deps.c.upstream_id == old, deps.c.job_id.in_(not_run))
        )
    ]
    if moved:
        conn.execute(
            update(deps)
            .where(deps.c.upstream_id == old, deps.c.job_id.in_(moved))
            .values(upstream_id=new)
        )
    return moved
