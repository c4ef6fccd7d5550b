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
from jobyard.models import Condition, Job
from jobyard.outcomes import state_event
from jobyard.states import Event, JobState, transition
from jobyard.store import Store
from jobyard.store.dependencies import DependencyState
from jobyard.store.store import JobUpdate

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


def blocker(dependencies: Iterable[DependencyState]) -> DependencyState | None:
    """The first dependency that can never be met."""
    for dependency in dependencies:
        if condition_readiness(dependency.condition, dependency.state) is Readiness.IMPOSSIBLE:
            return dependency
    return None


class Dependencies:
    def __init__(
        self,
        store: Store,
        *,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self._wake = wake
        self._clock = clock

    def settle(self, ended: Iterable[int]) -> None:
        """Jobs ended (or were removed): start or block the jobs waiting for them, in turn."""
        frontier = list(ended)
        while frontier:
            waiting = self.store.dependents(frontier, [JobState.WAITING])
            frontier = self._decide(waiting)

    def sweep(self) -> None:
        """Settle every waiting job whose dependencies all ended (after a crash, say)."""
        self.settle_jobs(self.store.dependents_waiting())

    def settle_jobs(self, jobs: list[Job]) -> None:
        self.settle(self._decide(jobs))

    def _decide(self, waiting: list[Job]) -> list[int]:
        """Move each waiting job that is ready or blocked; returns the ones now ended."""
        if not waiting:
            return []
        states = self.store.dependencies([job.id for job in waiting])
        now = self._clock()
        ended, started = [], False
        for job in waiting:
            found = readiness(states[job.id])
            if found is Readiness.PENDING:
                continue
            update = self._move(job, states[job.id], found, now)
            if self.store.update_job(update, now) is None:
                continue  # someone else moved it first
            if found is Readiness.IMPOSSIBLE:
                ended.append(job.id)
            else:
                started = True
        if started:
            self._wake()
        return ended

    def _move(
        self, job: Job, dependencies: list[DependencyState], found: Readiness, now: datetime
    ) -> JobUpdate:
        if found is Readiness.MET:
            ahead = job.run_at is not None and job.run_at > now
            state = transition(job.state, Event.READY, run_at_ahead=ahead).state
            return JobUpdate(
                job.id, frozenset({job.state}), {"state": state}, state_event(now, state)
            )
        cause = blocker(dependencies)
        assert cause is not None
        error = f"dependency {cause.upstream} ended {cause.state or 'removed'}"
        state = transition(job.state, Event.BLOCK).state
        values: dict[str, Any] = {
            "state": state,
            "finished_at": now,
            "reason": "upstream_failed",
            "error": error,
        }
        event = state_event(now, state, reason="upstream_failed", error=error)
        return JobUpdate(job.id, frozenset({job.state}), values, event)

    def reopen(self, old: int, new: int) -> None:
        """``old`` was restarted as ``new``: dependents wait for ``new``, blocked ones reopen."""
        frontier = self.store.repoint_dependencies(old, new)
        while frontier:
            blocked = [
                job
                for job in self.store.jobs_by_id(frontier)
                if job.state is JobState.UPSTREAM_FAILED
            ]
            states = self.store.dependencies([job.id for job in blocked])
            reopened = [job.id for job in blocked if self._reopen(job, states[job.id])]
            frontier = [
                job.id for job in self.store.dependents(reopened, [JobState.UPSTREAM_FAILED])
            ]

    def _reopen(self, job: Job, dependencies: list[DependencyState]) -> bool:
        if readiness(dependencies) is Readiness.IMPOSSIBLE:
            return False  # another dependency still failed
        now = self._clock()
        state = transition(job.state, Event.UNBLOCK).state
        values = {"state": state, "finished_at": None, "reason": None, "error": None}
        event = state_event(now, state, reason="dependency restarted")
        return (
            self.store.update_job(JobUpdate(job.id, frozenset({job.state}), values, event), now)
            is not None
        )
