"""Dependencies between jobs: when a waiting job may run, or never can.

A job submitted with ``depends_on`` waits (``waiting``) until every dependency
is met: ``succeeded`` (Slurm's afterok), ``failed`` (afternotok: failed, killed
or upstream_failed) or ``finished`` (afterany). When one can never be met, the
job ends ``upstream_failed`` and so, in turn, do the jobs waiting for it.
Restarting the job that failed moves its waiting dependents over to the new
run and reopens the ones it had blocked: they wait again, and run when it
succeeds.

:func:`readiness` is pure; :class:`Dependencies` applies it after a job ends,
walking only the edges out of the jobs that changed (O(edges) over a run).
Every move is a compare-and-set on the waiting job, so two processes settling
the same job cannot start it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from jobyard.clock import utcnow
from jobyard.events.records import JobStateChanged, JobTerminated
from jobyard.models import Condition, DependencyState, Job, JobUpdate
from jobyard.states import Event, JobState, transition
from jobyard.store.protocol import Storage

log = logging.getLogger(__name__)


class Readiness(StrEnum):
    MET = "met"
    PENDING = "pending"
    IMPOSSIBLE = "impossible"


def condition_readiness(condition: Condition, state: JobState | None) -> Readiness:
    if state is None:  # the upstream job was removed: it will never end now
        return Readiness.IMPOSSIBLE
    if not state.terminal:
        return Readiness.PENDING
    if condition is Condition.FINISHED:
        return Readiness.MET
    succeeded = state is JobState.SUCCEEDED
    if condition is Condition.SUCCEEDED:
        return Readiness.MET if succeeded else Readiness.IMPOSSIBLE
    return Readiness.IMPOSSIBLE if succeeded else Readiness.MET


def readiness(dependencies: Iterable[DependencyState]) -> Readiness:
    """All met, some pending, or one impossible (which wins)."""
    found = {condition_readiness(d.condition, d.state) for d in dependencies}
    if Readiness.IMPOSSIBLE in found:
        return Readiness.IMPOSSIBLE
    return Readiness.PENDING if Readiness.PENDING in found else Readiness.MET


class Dependencies:
    def __init__(
        self,
        store: Storage,
        *,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self._wake = wake
        self._clock = clock

    def settle(self, ended: Iterable[int]) -> None:
        """Jobs ended (or were removed): count their edges off, start or block dependents.

        Each edge is looked at once, when its upstream ends, and a waiting job is
        ready when its count of pending dependencies reaches zero, so a run costs
        O(edges) however wide its fan-in (no job re-reads all of its upstreams).
        """
        frontier = list(ended)
        while frontier:
            blocked: list[int] = []
            for upstream_id in frontier:
                blocked += self._settle_one(upstream_id)
            frontier = blocked

    def _settle_one(self, upstream_id: int) -> list[int]:
        """Settle the edges out of one ended job; returns the jobs it blocked."""
        edges = self.store.deps.unmet_edges(upstream_id)
        if not edges:
            return []
        upstream = self.store.jobs.get_job(upstream_id)
        state = upstream.state if upstream is not None else None
        if state is not None and not state.terminal:
            return []  # restarted or reopened meanwhile: settled when it ends again
        verdicts = {job_id: condition_readiness(c, state) for job_id, c in edges}
        met = [job_id for job_id, v in verdicts.items() if v is Readiness.MET]
        ready = self.store.deps.meet_edges(upstream_id, met)
        cause = f"dependency {upstream_id} ended {state.value if state else 'removed'}"
        impossible = [job_id for job_id, v in verdicts.items() if v is Readiness.IMPOSSIBLE]
        now = self._clock()
        for job in self.store.jobs.jobs_by_id(ready):
            self._ready(job, now)
        return [
            job.id for job in self.store.jobs.jobs_by_id(impossible) if self._block(job, cause, now)
        ]

    def sweep(self) -> None:
        """Finish what an interrupted settle left (a process died in between)."""
        self.settle(self.store.deps.unsettled_upstreams())
        now = self._clock()
        for job in self.store.deps.ready_waiting():
            self._ready(job, now)

    def _ready(self, job: Job, now: datetime) -> None:
        if job.state is not JobState.WAITING:
            return  # held: it is released later, and waits no more then
        ahead = job.run_at is not None and job.run_at > now
        state = transition(job.state, Event.READY, run_at_ahead=ahead).state
        update = JobUpdate(
            job.id, frozenset({job.state}), {"state": state}, JobStateChanged(at=now, state=state)
        )
        if self.store.jobs.update_job(update, now) is not None:
            self._wake()

    def _block(self, job: Job, error: str, now: datetime) -> bool:
        if job.state is not JobState.WAITING:
            return False  # a held job is blocked when someone releases it
        state = transition(job.state, Event.BLOCK).state
        values: dict[str, Any] = {
            "state": state,
            "finished_at": now,
            "reason": "upstream_failed",
            "error": error,
        }
        event = JobTerminated(at=now, state=state, reason="upstream_failed", error=error)
        update = JobUpdate(job.id, frozenset({job.state}), values, event)
        return self.store.jobs.update_job(update, now) is not None

    def reopen(self, old: int, new: int) -> None:
        """``old`` was restarted as ``new``: dependents wait for ``new``, blocked ones reopen."""
        frontier = self.store.deps.repoint_dependencies(old, new)
        while frontier:
            blocked = [
                job
                for job in self.store.jobs.jobs_by_id(frontier)
                if job.state is JobState.UPSTREAM_FAILED
            ]
            states = self.store.deps.dependencies([job.id for job in blocked])
            reopened = [job.id for job in blocked if self._reopen(job, states[job.id])]
            frontier = [
                job.id for job in self.store.deps.dependents(reopened, [JobState.UPSTREAM_FAILED])
            ]

    def _reopen(self, job: Job, dependencies: list[DependencyState]) -> bool:
        if readiness(dependencies) is Readiness.IMPOSSIBLE:
            return False  # another dependency still failed
        now = self._clock()
        state = transition(job.state, Event.UNBLOCK).state
        values = {"state": state, "finished_at": None, "reason": None, "error": None}
        event = JobStateChanged(at=now, state=state, reason="dependency restarted")
        return (
            self.store.jobs.update_job(
                JobUpdate(job.id, frozenset({job.state}), values, event), now
            )
            is not None
        )
