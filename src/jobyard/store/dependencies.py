"""The dependency edges between jobs: what waits for what, and which edges are met."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import Connection, false, or_, select, update

from jobyard.models import Condition, DependencyState, Job
from jobyard.states import JobState
from jobyard.store.part import Part
from jobyard.store.rows import job_from_row, jobs_where
from jobyard.store.tables import job_dependencies as deps
from jobyard.store.tables import jobs

__all__ = ["DependencyState", "SqlDependencies"]

REOPENABLE = (JobState.WAITING, JobState.UPSTREAM_FAILED, JobState.HELD)


class SqlDependencies(Part):
    """:class:`~jobyard.store.protocol.DependencyStore` on SQL."""

    def dependencies(self, job_ids: Collection[int]) -> dict[int, list[DependencyState]]:
        """Each job's dependencies with the upstream job's state (None: it was deleted)."""
        with self._read() as conn:
            return of_jobs(conn, job_ids)

    def dependents(self, upstream_ids: Collection[int], states: Collection[JobState]) -> list[Job]:
        """Jobs in ``states`` that depend on any of ``upstream_ids``."""
        with self._read() as conn:
            return dependents(conn, upstream_ids, states)

    def unmet_edges(self, upstream_id: int) -> list[tuple[int, Condition]]:
        """(waiting or held job, condition) for edges out of ``upstream_id`` not counted yet."""
        with self._read() as conn:
            return unmet_edges(conn, upstream_id)

    def meet_edges(self, upstream_id: int, job_ids: Sequence[int]) -> list[int]:
        """Count these edges as met (each once); returns the jobs with none left."""
        with self._write() as conn:
            return meet_edges(conn, upstream_id, job_ids)

    def unsettled_upstreams(self) -> list[int]:
        """Ended (or removed) jobs with waiting dependents whose edges were never settled."""
        with self._read() as conn:
            return unsettled_upstreams(conn)

    def ready_waiting(self) -> list[Job]:
        """``waiting`` jobs with no dependency left (a settle was interrupted)."""
        with self._read() as conn:
            return jobs_where(
                conn, jobs.c.state == JobState.WAITING.value, jobs.c.deps_pending <= 0
            )

    def repoint_dependencies(self, old: int, new: int) -> list[int]:
        """Jobs that waited for ``old`` (and have not run) wait for ``new`` instead."""
        with self._write() as conn:
            return repoint(conn, old, new)


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


def repoint(conn: Connection, old: int, new: int) -> list[int]:
    """Unmet edges from ``old`` to jobs that have not run now come from ``new``."""
    not_run = select(jobs.c.id).where(jobs.c.state.in_([s.value for s in REOPENABLE]))
    edges_from_old = (deps.c.upstream_id == old, deps.c.met == false())
    moved = [
        job_id
        for (job_id,) in conn.execute(
            select(deps.c.job_id).where(*edges_from_old, deps.c.job_id.in_(not_run))
        )
    ]
    if moved:
        conn.execute(
            update(deps).where(*edges_from_old, deps.c.job_id.in_(moved)).values(upstream_id=new)
        )
    return moved


SETTLE_STATES = (JobState.WAITING.value, JobState.HELD.value)
CHUNK = 2000


def unmet_edges(conn: Connection, upstream_id: int) -> list[tuple[int, Condition]]:
    """(waiting job, condition) for the edges out of ``upstream_id`` not yet counted as met."""
    query = (
        select(deps.c.job_id, deps.c.condition)
        .select_from(deps.join(jobs, jobs.c.id == deps.c.job_id))
        .where(
            deps.c.upstream_id == upstream_id,
            deps.c.met == false(),
            jobs.c.state.in_(SETTLE_STATES),
        )
        .order_by(deps.c.job_id)
    )
    return [(job_id, Condition(condition)) for job_id, condition in conn.execute(query)]


def meet_edges(conn: Connection, upstream_id: int, job_ids: Sequence[int]) -> list[int]:
    """Count the edges from ``upstream_id`` to ``job_ids`` as met, each once.

    Returns the jobs that now have no dependency left. The edge rows are locked
    and flipped in the same transaction as the counters, so settling the same
    upstream twice (two processes, or a sweep) cannot count an edge twice.
    """
    ready: list[int] = []
    for start in range(0, len(job_ids), CHUNK):
        chunk = list(job_ids[start : start + CHUNK])
        unmet = (
            select(deps.c.job_id)
            .where(
                deps.c.upstream_id == upstream_id,
                deps.c.job_id.in_(chunk),
                deps.c.met == false(),
            )
            .with_for_update()
        )
        counted = [job_id for (job_id,) in conn.execute(unmet)]
        if not counted:
            continue
        conn.execute(
            update(deps)
            .where(deps.c.upstream_id == upstream_id, deps.c.job_id.in_(counted))
            .values(met=True)
        )
        conn.execute(
            update(jobs).where(jobs.c.id.in_(counted)).values(deps_pending=jobs.c.deps_pending - 1)
        )
        done = select(jobs.c.id).where(jobs.c.id.in_(counted), jobs.c.deps_pending <= 0)
        ready += [job_id for (job_id,) in conn.execute(done)]
    return ready


def unsettled_upstreams(conn: Connection) -> list[int]:
    """Ended (or removed) jobs with waiting dependents whose edges were never settled."""
    upstream = jobs.alias("upstream")
    dependent = jobs.alias("dependent")
    ended = [state.value for state in JobState if state.terminal]
    query = (
        select(deps.c.upstream_id)
        .distinct()
        .select_from(
            deps.join(dependent, dependent.c.id == deps.c.job_id).outerjoin(
                upstream, upstream.c.id == deps.c.upstream_id
            )
        )
        .where(
            deps.c.met == false(),
            dependent.c.state == JobState.WAITING.value,
            or_(upstream.c.id.is_(None), upstream.c.state.in_(ended)),
        )
    )
    return [upstream_id for (upstream_id,) in conn.execute(query)]
