"""Claims, leases, control intents and paused queues, in memory."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import datetime

from jobyard.events.records import JobClaimed, JobPromoted
from jobyard.limits import Key, keys_of, pick
from jobyard.models import Ended, Job, JobEnd, claim_values
from jobyard.routing import routes_for
from jobyard.states import LIVE, Control, JobState
from jobyard.store.memory.dependencies import MemoryDependencies
from jobyard.store.memory.jobs import MemoryJobs
from jobyard.store.memory.tables import Part, utc
from jobyard.store.protocol import (
    Claimed,
    ClaimOrder,
    Met,
    after_settle,
    to_settle,
    with_live_runs,
)

_HOLDING = (JobState.RUNNING, JobState.PAUSED)  # a paused job keeps its limit slot


class MemoryQueue(Part):
    """:class:`~jobyard.store.protocol.QueueStore` in memory."""

    def claim_jobs(
        self,
        worker: str,
        host: str,
        queues: Sequence[str] | None,
        limit: int,
        now: datetime,
        lease_until: datetime,
        *,
        tags: Collection[str] = (),
        idle_poll: bool = False,
    ) -> Claimed:
        if limit < 1 or (queues is not None and not queues):
            return Claimed([], more=False)
        now, routes = utc(now), set(routes_for(tags))

        def ready(job: Job) -> bool:
            return (
                job.state is JobState.QUEUED
                and (job.run_at is None or job.run_at <= now)
                and (queues is None or job.queue in queues)
                and job.route in routes
                and job.queue not in self._t.paused
            )

        with self._t.lock:
            candidates = self._t.where(ready)
            candidates.sort(key=lambda job: (-job.priority, job.id))
            free = self._free_slots()
            taken = [job for job in candidates if pick([job], free)][:limit]
            claimed = [self._claim(job, worker, host, now, utc(lease_until)) for job in taken]
            # A ready job left, whatever the limits: what the SQL stores' look counts.
            more = len(claimed) == limit and len(candidates) > len(taken)
            return Claimed(claimed, more)

    def end_and_claim(
        self,
        ends: Sequence[JobEnd],
        now: datetime,
        order: ClaimOrder,
        *,
        settle: Met | None = None,
        released_only: bool = False,
    ) -> tuple[list[Ended | None], Claimed | None]:
        worker, host, queues, limit, lease_until, tags = order
        # A claim refused refuses the ends too: what can refuse it is checked first.
        routes_for(tags)
        utc(lease_until)
        with self._t.lock:
            ended, settled = MemoryJobs(self._t).end_jobs(ends, now), None
            if settle is not None and (upstreams := to_settle(ended)):
                settled = MemoryDependencies(self._t).settle_edges(upstreams, settle, now)
                ended = after_settle(ended, upstreams, settled)
            claimed = None
            if not released_only or (settled is not None and settled.released):
                claimed = self.claim_jobs(worker, host, queues, limit, now, lease_until, tags=tags)
            return with_live_runs(ended, settled, claimed), claimed

    def _free_slots(self) -> dict[Key, int]:
        caps = {key: n for key, (n, _) in self._t.limits.items()}
        held = Counter(
            key for job in self._t.where(lambda job: job.state in _HOLDING) for key in keys_of(job)
        )
        return {key: cap - held[key] for key, cap in caps.items()}

    def _claim(self, job: Job, worker: str, host: str, now: datetime, lease: datetime) -> Job:
        claimed = self._t.set(job.id, claim_values(job, worker, host, now, lease))
        at = claimed.updated_at  # the claim's time (not before the job was queued)
        self._t.add_event(job.id, JobClaimed(at=at, attempt=claimed.attempt, worker=worker))
        return claimed

    def renew_leases(
        self,
        worker: str,
        now: datetime,
        lease_until: datetime,
        job_ids: Collection[int] | None = None,
    ) -> list[int]:
        wanted = None if job_ids is None else set(job_ids)
        with self._t.lock:
            mine = self._t.where(
                lambda job: (
                    job.worker == worker
                    and job.state in LIVE
                    and (wanted is None or job.id in wanted)
                )
            )
            for job in mine:
                self._t.set(job.id, {"lease_expires_at": utc(lease_until)})
            if worker in self._t.workers:
                info = self._t.workers[worker]
                self._t.workers[worker] = dataclasses.replace(info, heartbeat_at=utc(now))
            return [job.id for job in mine]

    def live_controls(self, worker: str) -> dict[int, Control | None]:
        with self._t.lock:
            mine = self._t.where(lambda job: job.worker == worker and job.state in LIVE)
        return {job.id: job.control for job in mine}

    def promote_due(self, now: datetime) -> list[int]:
        now = utc(now)
        with self._t.lock:
            due = self._t.where(
                lambda job: (
                    job.state is JobState.SCHEDULED and job.run_at is not None and job.run_at <= now
                )
            )
            for job in due:
                self._t.set(job.id, {"state": JobState.QUEUED, "updated_at": now})
                self._t.add_event(job.id, JobPromoted(at=now))
            return [job.id for job in due]

    def expired_leases(self, now: datetime) -> list[Job]:
        def expired(job: Job) -> bool:
            lease = job.lease_expires_at
            return job.state in LIVE and lease is not None and lease < utc(now)

        with self._t.lock:
            return self._t.where(expired)

    def live_jobs_on_host(self, host: str) -> list[Job]:
        with self._t.lock:
            return self._t.where(lambda job: job.state in LIVE and job.host == host)

    def set_queue_paused(self, name: str, paused: bool, now: datetime) -> None:
        with self._t.lock:
            self._t.queues_set.add(name)
            (self._t.paused.add if paused else self._t.paused.discard)(name)

    def start_paused(self, names: Collection[str], now: datetime) -> set[str]:
        with self._t.lock:
            new = set(names) - self._t.queues_set
            self._t.queues_set |= new
            self._t.paused |= new
            return new

    def paused_queues(self) -> set[str]:
        with self._t.lock:
            return set(self._t.paused)

    def queue_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        with self._t.lock:
            for job in self._t.jobs.values():
                per_state = counts.setdefault(job.queue, {})
                per_state[job.state.value] = per_state.get(job.state.value, 0) + 1
        return counts
