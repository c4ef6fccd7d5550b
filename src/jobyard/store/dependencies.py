"""The dependency edges between jobs: what waits for what, and which edges are met."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    Connection,
    bindparam,
    exists,
    false,
    insert,
    or_,
    select,
    update,
)

from jobyard import faults
from jobyard.events.records import JobStateChanged, JobTerminated
from jobyard.models import Condition, DependencyState, Job
from jobyard.states import Event, JobState, transition
from jobyard.store import guard
from jobyard.store.coltypes import MYSQL
from jobyard.store.part import Part
from jobyard.store.protocol import Met, Settled
from jobyard.store.rows import event_row, job_from_row, whole_event_row
from jobyard.store.tables import job_dependencies as deps
from jobyard.store.tables import job_events, jobs

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

    def settle_edges(self, upstream_ids: Collection[int], met: Met, now: datetime) -> Settled:
        """Count off the edges out of the ended ``upstream_ids``, in one transaction."""
        with self._write() as conn:
            settled = settle_edges(conn, upstream_ids, met, now)
            faults.reach("workflow.advance")
            return settled

    def release_ready(self, now: datetime) -> list[int]:
        """Every ``waiting`` job with no dependency left leaves ``waiting`` (a settle was
        interrupted); their ids."""
        with self._write() as conn:
            return release(conn, now)

    def block_jobs(self, errors: Mapping[int, str], now: datetime) -> list[int]:
        """The ``waiting`` jobs among ``errors`` end ``upstream_failed`` with that error."""
        with self._write() as conn:
            return block(conn, errors, now)

    def unsettled_upstreams(self) -> list[int]:
        """Ended (or removed) jobs with waiting dependents whose edges were never settled."""
        with self._read() as conn:
            return unsettled_upstreams(conn)

    def repoint_dependencies(self, old: int, new: int) -> list[int]:
        """Jobs that waited for ``old`` (and have not run) wait for ``new`` instead."""
        with self._write() as conn:
            return repoint(conn, old, new)


_OF_JOBS = (
    select(deps.c.job_id, deps.c.upstream_id, deps.c.condition, jobs.c.state, deps.c.met)
    .select_from(deps.outerjoin(jobs, jobs.c.id == deps.c.upstream_id))
    .where(deps.c.job_id.in_(bindparam("ids", expanding=True)))
    .order_by(deps.c.job_id, deps.c.upstream_id)
)  # built once: a job's GET reads it


def of_jobs(conn: Connection, job_ids: Collection[int]) -> dict[int, list[DependencyState]]:
    found: dict[int, list[DependencyState]] = {job_id: [] for job_id in job_ids}
    if not job_ids:
        return found
    for job_id, upstream, condition, state, met in conn.execute(_OF_JOBS, {"ids": list(job_ids)}):
        upstream_state = JobState(state) if state else None
        found[job_id].append(
            DependencyState(upstream, Condition(condition), upstream_state, bool(met))
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


SETTLE_STATES = frozenset({JobState.WAITING, JobState.HELD})
CHUNK = 500  # upstream ids per statement: a settle rarely has more
ID_CHUNK = 4000  # job ids per statement, well under every database's limit on parameters

# Built once: a settle runs after every job that ends. Filters on ``state`` stay
# out of them, so that every plan starts from the upstream's edges or from ids,
# never from an index of all the waiting jobs.
_UPSTREAMS: BindParameter[int] = bindparam("upstreams", expanding=True)
_IDS: BindParameter[int] = bindparam("ids", expanding=True)
_STATES = select(jobs.c.id, jobs.c.state).where(jobs.c.id.in_(_UPSTREAMS))
_EDGES = (
    select(
        deps.c.job_id,
        deps.c.upstream_id,
        deps.c.condition,
        jobs.c.state,
        jobs.c.deps_pending,
        jobs.c.run_at,
        jobs.c.workflow_run,
    )
    .select_from(deps.join(jobs, jobs.c.id == deps.c.job_id))
    .where(deps.c.upstream_id.in_(_UPSTREAMS), deps.c.met == false())
    .order_by(deps.c.job_id, deps.c.upstream_id)
    .with_for_update()
)
_MEET = (
    update(deps)
    .where(
        deps.c.upstream_id.in_(_UPSTREAMS),
        # only the edges the locking read counted: one stored after it is not met here
        deps.c.job_id.in_(bindparam("counted", expanding=True)),
        deps.c.condition.in_(bindparam("conditions", expanding=True)),
        deps.c.met == false(),
        exists().where(
            jobs.c.id == deps.c.job_id, jobs.c.state.in_([s.value for s in SETTLE_STATES])
        ),
    )
    .values(met=True)
)
#: The jobs waiting on these upstream jobs' unmet edges (see :func:`_lock_dependents`).
_DEPENDENTS = (
    select(deps.c.job_id)
    .distinct()
    .where(deps.c.upstream_id.in_(_UPSTREAMS), deps.c.met == false())
)
#: Jobs' states, their rows locked in id order (as every lock of several jobs is).
_LOCK_STATES = guard.JOBS_BY_IDS.with_only_columns(jobs.c.id, jobs.c.state).with_for_update()
_COUNT_OFF = (
    update(jobs)
    .where(jobs.c.id.in_(_IDS))
    .values(deps_pending=jobs.c.deps_pending - bindparam("count"))
)


def chunks(ids: Collection[int], size: int = CHUNK) -> list[list[int]]:
    ordered = sorted(set(ids))
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


class _Waiting(NamedTuple):
    """A waiting (or held) job whose edges are being counted off."""

    state: JobState
    pending: int
    run_at: datetime | None
    counted: int = 0


def settle_edges(
    conn: Connection,
    upstream_ids: Collection[int],
    met: Met,
    now: datetime,
    events: list[dict[str, Any]] | None = None,
    states: Mapping[int, JobState] | None = None,
) -> Settled:
    """Count off the unmet edges out of the ended ``upstream_ids``; release the ready jobs.

    A few statements however many edges go out of the upstream jobs: one reads
    their states, one the edges with their waiting jobs (locking both on a
    server database, the jobs in id order, so that a concurrent settle of the same
    jobs waits and then finds nothing left to count; MariaDB may need two more for
    that order, see :func:`_lock_dependents`), one flips the met edges per
    upstream state, and the counters drop by each job's count of edges in
    updates by id. Given ``events``, the release events' rows go there (every column
    set), for the caller to insert with its own, just before its commit. Given
    ``states``, the upstream jobs' states as the caller's transaction wrote them, they
    are not read again.
    """
    _lock_dependents(conn, upstream_ids)
    waiting: dict[int, _Waiting] = {}
    impossible: list[tuple[int, int, JobState | None]] = []
    counted_runs: set[int] = set()  # workflow runs of the jobs counted off
    blocked_runs: set[int] = set()  # and of those with an edge that can never be met
    for chunk in chunks(upstream_ids):
        if states is not None and all(upstream_id in states for upstream_id in chunk):
            found: dict[int, JobState] = {upstream_id: states[upstream_id] for upstream_id in chunk}
        else:
            rows = conn.execute(_STATES, {"upstreams": chunk})
            found = {job_id: JobState(state) for job_id, state in rows}
        ended: dict[JobState | None, list[int]] = {}
        for upstream_id in chunk:
            if (state := found.get(upstream_id)) in met:  # else live again: settled later
                ended.setdefault(state, []).append(upstream_id)
        if not ended:
            continue
        ids = [upstream_id for group in ended.values() for upstream_id in group]
        counted: dict[JobState | None, set[int]] = {}
        for job_id, upstream_id, condition, state, pending, run_at, run in conn.execute(
            _EDGES, {"upstreams": ids}
        ):
            if (job_state := JobState(state)) not in SETTLE_STATES:
                continue
            upstream_state = found.get(upstream_id)
            if Condition(condition) not in met[upstream_state]:
                impossible.append((job_id, upstream_id, upstream_state))
                if run is not None:
                    blocked_runs.add(run)
                continue
            job = waiting.get(job_id) or _Waiting(job_state, pending, run_at)
            waiting[job_id] = job._replace(counted=job.counted + 1)
            counted.setdefault(upstream_state, set()).add(job_id)
            if run is not None:
                counted_runs.add(run)
        for state, group in ended.items():
            conditions = [condition.value for condition in met[state]]
            params = {"upstreams": group, "conditions": conditions}
            for job_ids in chunks(counted.get(state, ()) if conditions else ()):
                conn.execute(_MEET, params | {"counted": job_ids})
    released = _count_off(conn, waiting, now, events)
    return Settled(released, sorted(impossible), frozenset(counted_runs - blocked_runs))


def _lock_dependents(conn: Connection, upstream_ids: Collection[int]) -> None:
    """Lock the rows of the jobs waiting on these upstream jobs, in id order, before the
    settle's locking read takes them with their edges, where that read would not.

    InnoDB (MariaDB, MySQL) locks a locking read's rows as its plan finds them: here
    edge by edge, in the order of the upstream jobs. Two settles of different upstream
    jobs that met the same dependents in opposite orders each held one and waited for
    the other, and the database aborted one of them. The edges of one upstream job come
    in id order (the index on the upstream carries the dependent's id), so one upstream
    needs nothing more. PostgreSQL locks a read's rows in its ``ORDER BY`` order (the
    dependent's id first), but a settle of more upstream jobs than one read takes reads
    them chunk by chunk. A dependent stored between this look and that read is locked
    by the read, out of order; the newest job, in a window of a statement.
    """
    dialect, upstreams = conn.dialect.name, set(upstream_ids)
    if dialect == "sqlite" or len(upstreams) < 2:
        return  # one writer at a time; one upstream's edges come in id order
    if dialect not in MYSQL and len(upstreams) <= CHUNK:
        return  # PostgreSQL's one read locks them in its order
    waiting: set[int] = set()
    for chunk in chunks(upstreams):
        waiting.update(conn.execute(_DEPENDENTS, {"upstreams": chunk}).scalars())
    if len(waiting) < 2:
        return
    for chunk in chunks(waiting, ID_CHUNK):
        conn.execute(_LOCK_STATES, {"ids": chunk})


def _count_off(
    conn: Connection,
    waiting: Mapping[int, _Waiting],
    now: datetime,
    events: list[dict[str, Any]] | None = None,
) -> list[int]:
    """Drop each job's counter by its edges counted; the waiting ones left at zero go on."""
    moves: dict[tuple[int, JobState | None], list[int]] = {}
    for job_id, job in waiting.items():
        ready = job.state is JobState.WAITING and job.pending - job.counted <= 0
        target = _ready_state(job.run_at, now) if ready else None
        moves.setdefault((job.counted, target), []).append(job_id)
    released: list[tuple[int, datetime | None]] = []
    for (count, target), job_ids in moves.items():
        for chunk in chunks(job_ids, ID_CHUNK):
            if target is None:
                conn.execute(_COUNT_OFF, {"ids": chunk, "count": count})
                continue
            values = {"state": target.value, "updated_at": now}
            conn.execute(_COUNT_OFF.values(values), {"ids": chunk, "count": count})
        if target is not None:
            released += [(job_id, waiting[job_id].run_at) for job_id in job_ids]
    _released_events(conn, released, now, events)
    return sorted(job_id for job_id, _ in released)


def _ready_state(run_at: datetime | None, now: datetime) -> JobState:
    """Where the state table sends a waiting job whose dependencies are all met."""
    ahead = run_at is not None and run_at > now
    return transition(JobState.WAITING, Event.READY, run_at_ahead=ahead).state


def _released_events(
    conn: Connection,
    released: Sequence[tuple[int, datetime | None]],
    now: datetime,
    events: list[dict[str, Any]] | None = None,
) -> None:
    records = [
        (job_id, JobStateChanged(at=now, state=_ready_state(run_at, now)))
        for job_id, run_at in released
    ]
    if events is not None:
        events += [whole_event_row(job_id, record) for job_id, record in records]
    elif records:
        conn.execute(insert(job_events), [event_row(job_id, record) for job_id, record in records])


def release(conn: Connection, now: datetime) -> list[int]:
    """Every ``waiting`` job with no dependency left leaves ``waiting`` (with an event),
    but for those whose row another session holds, left to the next sweep: InnoDB
    locks every row its scan reads, so a job row held by a stopped session (any job's)
    would hold up the scheduler's whole loop."""
    ready = (jobs.c.state == JobState.WAITING.value, jobs.c.deps_pending <= 0)
    query = select(jobs.c.id, jobs.c.run_at).where(*ready).order_by(jobs.c.id)
    found = conn.execute(query.with_for_update(skip_locked=True)).all()
    by_state: dict[JobState, list[int]] = {}
    for job_id, run_at in found:
        by_state.setdefault(_ready_state(run_at, now), []).append(job_id)
    for state, job_ids in by_state.items():
        for chunk in chunks(job_ids, ID_CHUNK):
            values = {"state": state.value, "updated_at": now}
            conn.execute(update(jobs).where(jobs.c.id.in_(chunk)).values(values))
    _released_events(conn, [(job_id, run_at) for job_id, run_at in found], now)
    return [job_id for job_id, _ in found]


def block(conn: Connection, errors: Mapping[int, str], now: datetime) -> list[int]:
    """The ``waiting`` jobs among ``errors`` end ``upstream_failed`` with their error."""
    waiting: dict[str, list[int]] = {}
    for chunk in chunks(errors, ID_CHUNK):
        for job_id, state in conn.execute(_LOCK_STATES, {"ids": chunk}):
            if state == JobState.WAITING.value:
                waiting.setdefault(errors[job_id], []).append(job_id)
    state = transition(JobState.WAITING, Event.BLOCK).state
    for error, job_ids in waiting.items():
        values = {"state": state.value, "finished_at": now, "updated_at": now}
        values |= {"reason": "upstream_failed", "error": error}
        for chunk in chunks(job_ids, ID_CHUNK):
            conn.execute(update(jobs).where(jobs.c.id.in_(chunk)).values(values))
        event = JobTerminated(at=now, state=state, reason="upstream_failed", error=error)
        conn.execute(insert(job_events), [event_row(job_id, event) for job_id in job_ids])
    return sorted(job_id for job_ids in waiting.values() for job_id in job_ids)


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
