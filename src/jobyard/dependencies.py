"""Dependencies between jobs: when a waiting job may run, or never can.

A job submitted with ``depends_on`` waits (``waiting``) until every dependency
is met: ``succeeded`` (Slurm's afterok), ``failed`` (afternotok: failed, killed
or upstream_failed) or ``finished`` (afterany). When one can never be met, the
job ends ``upstream_failed`` and so, in turn, do the jobs waiting for it.
Restarting the job that failed moves its waiting dependents over to the new
run and reopens the ones it had blocked: they wait again, and run when it
succeeds.

:func:`readiness` is pure; :class:`Dependencies` applies it after jobs end,
counting off only the edges out of the jobs that ended (O(edges) over a run),
as sets: the store counts the edges of one condition and one upstream state
in a few statements, however many there are. Every move is a compare-and-set
on the waiting job, so two processes settling the same job cannot start it
twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from enum import StrEnum

from jobyard.clock import utcnow
from jobyard.events.records import JobStateChanged
from jobyard.models import Condition, DependencyState, Job, JobUpdate
from jobyard.states import TERMINAL, Event, JobState, transition
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


def upstream_error(upstream: int, state: JobState | None) -> str:
    """The error of a job that can never run because of ``upstream`` (now in ``state``,
    None: removed)."""
    return f"dependency {upstream} ended {state.value if state is not None else 'removed'}"


def conditions_with(state: JobState | None, verdict: Readiness) -> list[Condition]:
    """The conditions that an upstream job ended in ``state`` gives this verdict."""
    return [c for c in Condition if condition_readiness(c, state) is verdict]


#: The conditions that an upstream job ended in each state meets (None: it was removed).
MET = {state: conditions_with(state, Readiness.MET) for state in [*sorted(TERMINAL), None]}


def dependency_readiness(dependency: DependencyState) -> Readiness:
    """A stored dependency's readiness: a met one stays met, whatever became of its
    upstream since (retention or a user may have removed it); the others are judged by
    the upstream's state now."""
    if dependency.met:
        return Readiness.MET
    return condition_readiness(dependency.condition, dependency.state)


def readiness(dependencies: Iterable[DependencyState]) -> Readiness:
    """All met, some pending, or one impossible (which wins)."""
    found = {dependency_readiness(d) for d in dependencies}
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

    def settle(self, ended: Iterable[int]) -> list[int]:
        """Jobs ended (or were removed): count their edges off, start or block dependents.

        Each edge is counted once, when its upstream ends, and a waiting job is
        ready when its count of pending dependencies reaches zero, so a run costs
        O(edges) however wide its fan-in (no job re-reads all of its upstreams).
        Many ended jobs settle together, in a few statements whatever their
        fan-out: one round per step of blocking, not one per job or per edge.
        Returns the jobs it blocked (``upstream_failed``).
        """
        frontier = sorted(set(ended))
        blocked: list[int] = []
        while frontier:
            frontier = self._settle_round(frontier)
            blocked += frontier
        return blocked

    def _settle_round(self, upstream_ids: list[int]) -> list[int]:
        """Settle the edges out of these jobs; returns the jobs they blocked."""
        now = self._clock()
        settled = self.store.deps.settle_edges(upstream_ids, MET, now)
        if settled.released:
            self._wake()
        errors: dict[int, str] = {}
        for job_id, upstream_id, state in settled.impossible:
            errors.setdefault(job_id, upstream_error(upstream_id, state))
        return self.store.deps.block_jobs(errors, now) if errors else []

    def settle_ended(self, upstream_ids: Collection[int]) -> list[int]:
        """Settle those of these jobs that have ended; returns them.

        Their states are read as no end under way leaves them: an end that counted off
        its edges before a job was stored (or reopened) to wait for it commits first, and
        what it missed is counted off here, not left to the scheduler's sweep.
        """
        now = self.store.jobs.job_states(upstream_ids, settled=True)
        ended = sorted(u for u in upstream_ids if u not in now or now[u].terminal)
        if ended:
            self.settle(ended)
        return ended

    def sweep(self) -> list[int]:
        """Finish what an interrupted settle left (a process died in between); returns
        the jobs it blocked, whose workflow runs may have ended with them."""
        blocked = self.settle(self.store.deps.unsettled_upstreams())
        if self.store.deps.release_ready(self._clock()):
            self._wake()
        return blocked

    def reopen(self, old: int, new: int) -> None:
        """``old`` was restarted as ``new``: dependents wait for ``new``, blocked ones reopen.

        A reopened job's other upstreams that ended while it was blocked were not
        counted off then (a settle leaves blocked jobs alone): they are settled now,
        so that it starts once ``new`` succeeds. So are those that ended since they were
        read here, ``new`` among them: such an end settled its edges before the job
        waited for it (or before they were re-pointed to it), and counted nothing.
        """
        frontier = self.store.deps.repoint_dependencies(old, new)
        upstreams: set[int] = {new}
        while frontier:
            blocked = [
                job
                for job in self.store.jobs.jobs_by_id(frontier)
                if job.state is JobState.UPSTREAM_FAILED
            ]
            states = self.store.deps.dependencies([job.id for job in blocked])
            reopened = [job.id for job in blocked if self._reopen(job, states[job.id])]
            upstreams |= {d.upstream for job_id in reopened for d in states[job_id] if not d.met}
            frontier = [
                job.id for job in self.store.deps.dependents(reopened, [JobState.UPSTREAM_FAILED])
            ]
        self.settle_ended(upstreams)

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
