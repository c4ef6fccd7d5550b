"""Dependency edges between jobs, in memory."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from jobyard.models import Condition, DependencyState, Job
from jobyard.states import JobState
from jobyard.store.memory.tables import Part

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
                    found[job_id].append(DependencyState(upstream, edge.condition, state))
        return found

    def dependents(self, upstream_ids: Collection[int], states: Collection[JobState]) -> list[Job]:
        with self._t.lock:
            waiting = {job_id for job_id, upstream in self._t.edges if upstream in upstream_ids}
            return self._t.where(lambda job: job.id in waiting and job.state in states)

    def unmet_edges(self, upstream_id: int) -> list[tuple[int, Condition]]:
        with self._t.lock:
            return [
                (job_id, edge.condition)
                for (job_id, upstream), edge in sorted(self._t.edges.items())
                if upstream == upstream_id and not edge.met and self._state(job_id) in _SETTLING
            ]

    def meet_edges(self, upstream_id: int, job_ids: Sequence[int]) -> list[int]:
        ready = []
        with self._t.lock:
            for job_id in job_ids:
                edge = self._t.edges.get((job_id, upstream_id))
                if edge is None or edge.met or job_id not in self._t.jobs:
                    continue
                edge.met = True
                job = self._t.set(job_id, {"deps_pending": self._t.jobs[job_id].deps_pending - 1})
                if job.deps_pending <= 0:
                    ready.append(job_id)
        return ready

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

    def ready_waiting(self) -> list[Job]:
        with self._t.lock:
            return self._t.where(
                lambda job: job.state is JobState.WAITING and job.deps_pending <= 0
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
