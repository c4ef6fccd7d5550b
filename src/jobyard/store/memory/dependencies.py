"""Dependency edges between jobs, in memory."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from jobyard.events.records import JobStateChanged, JobTerminated
from jobyard.models import DependencyState, Job
from jobyard.states import Event, JobState, transition
from jobyard.store.memory.tables import Part, utc
from jobyard.store.protocol import Met, Settled

_REOPENABLE = (JobState.WAITING, JobState.UPSTREAM_FAILED, JobState.HELD)
_SETTLING = (JobState.WAITING, JobState.HELD)


class MemoryDependencies(Part):
    """:class:`~jobyard.store.protocol.DependencyStore` in memory."""

    def dependencies(self, job_ids: Collection[int]) -> dict[int, list[DependencyState]]:
        found: dict[int, list[DependencyState]] = {job_id: [] for job_id in job_ids}
        with self._t.lock:
            for (job_id, upstream), edge in sorted(self._t.edges.items()):
                if job_id in found:
                    state = self._state(upstream)
                    found[job_id].append(DependencyState(upstream, edge.condition, state, edge.met))
        return found

    def dependents(self, upstream_ids: Collection[int], states: Collection[JobState]) -> list[Job]:
        with self._t.lock:
            waiting = {job_id for job_id, upstream in self._t.edges if upstream in upstream_ids}
            return self._t.where(lambda job: job.id in waiting and job.state in states)

    def settle_edges(self, upstream_ids: Collection[int], met: Met, now: datetime) -> Settled:
        t = self._t
        with t.lock:
            ended = {u: self._state(u) for u in upstream_ids if self._state(u) in met}
            counted, impossible = set(), []
            for (job_id, upstream), edge in sorted(t.edges.items()):
                if upstream not in ended or edge.met or self._state(job_id) not in _SETTLING:
                    continue
                if edge.condition not in met[ended[upstream]]:
                    impossible.append((job_id, upstream, ended[upstream]))
                    continue
                edge.met = True
                t.set(job_id, {"deps_pending": t.jobs[job_id].deps_pending - 1})
                counted.add(job_id)
            blocked = {t.jobs[job_id].workflow_run for job_id, _, _ in impossible}
            runs = {t.jobs[job_id].workflow_run for job_id in counted} - blocked
            live_runs = frozenset(run for run in runs if run is not None)
            return Settled(self._release(counted, utc(now)), impossible, live_runs)

    def release_ready(self, now: datetime) -> list[int]:
        with self._t.lock:
            return self._release(set(self._t.jobs), utc(now))

    def block_jobs(self, errors: Mapping[int, str], now: datetime) -> list[int]:
        now = utc(now)
        state = transition(JobState.WAITING, Event.BLOCK).state
        blocked = []
        with self._t.lock:
            for job_id, error in sorted(errors.items()):
                if self._state(job_id) is not JobState.WAITING:
                    continue
                values = {"state": state, "reason": "upstream_failed", "error": error}
                self._t.set(job_id, values | {"finished_at": now, "updated_at": now})
                event = JobTerminated(at=now, state=state, reason="upstream_failed", error=error)
                self._t.add_event(job_id, event)
                blocked.append(job_id)
        return blocked

    def _release(self, job_ids: set[int], now: datetime) -> list[int]:
        """The waiting jobs among these with no dependency left leave ``waiting``."""
        released = []
        for job_id in sorted(job_ids):
            job = self._t.jobs.get(job_id)
            if job is None or job.state is not JobState.WAITING or job.deps_pending > 0:
                continue
            ahead = job.run_at is not None and job.run_at > now
            state = transition(job.state, Event.READY, run_at_ahead=ahead).state
            self._t.set(job_id, {"state": state, "updated_at": now})
            self._t.add_event(job_id, JobStateChanged(at=now, state=state))
            released.append(job_id)
        return released

    def unsettled_upstreams(self) -> list[int]:
        with self._t.lock:
            return sorted(
                {
                    upstream
                    for (job_id, upstream), edge in self._t.edges.items()
                    if not edge.met
                    and self._state(job_id) is JobState.WAITING
                    and (upstream not in self._t.jobs or self._t.jobs[upstream].state.terminal)
                }
            )

    def repoint_dependencies(self, old: int, new: int) -> list[int]:
        with self._t.lock:
            moved = sorted(
                job_id
                for (job_id, upstream), edge in self._t.edges.items()
                if upstream == old and not edge.met and self._state(job_id) in _REOPENABLE
            )
            for job_id in moved:
                self._t.edges[(job_id, new)] = self._t.edges.pop((job_id, old))
            return moved

    def _state(self, job_id: int) -> JobState | None:
        job = self._t.jobs.get(job_id)
        return None if job is None else job.state
