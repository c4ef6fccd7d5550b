"""A worker settles the edges out of the jobs it ends in their end's transaction, and
claims in it what that released: a chain's next job starts in its upstream's commit.

The in-memory store keeps it fast; the jobs are real processes.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from jobyard.dependencies import MET, Dependencies
from jobyard.models import Dependency, Ended, Job, JobEnd, JobSpec, NewJob
from jobyard.runner.local import Runner
from jobyard.states import JobState
from jobyard.store.memory import MemoryStore
from jobyard.store.protocol import Claimed, ClaimOrder
from jobyard.worker.loop import Worker, WorkerSettings
from tests.harness import wait_for

SPEC = JobSpec(argv=["true"])


def chain(store: MemoryStore, length: int) -> list[int]:
    """``length`` jobs, each waiting for the one before; their ids in order."""
    now = datetime.now(UTC)
    [(first, _)] = store.jobs.add_jobs([NewJob("t", {}, SPEC, "default", 0, JobState.QUEUED)], now)
    ids = [first.id]
    for _ in range(length - 1):
        new = NewJob(
            "t", {}, SPEC, "default", 0, JobState.WAITING, depends_on=(Dependency(ids[-1]),)
        )
        [(job, _)] = store.jobs.add_jobs([new], now)
        ids.append(job.id)
    return ids


class Watched:
    """The store's end_and_claim calls, as (ended ids, claimed ids), and its claims
    apart from them."""

    def __init__(self, store: MemoryStore, *, fail_first: bool = False) -> None:
        self.ends: list[tuple[list[int], list[int]]] = []
        self.claims: list[list[int]] = []
        self.failed = 0
        self._lock = threading.Lock()
        self._inside = threading.local()
        end_and_claim, claim_jobs = store.queue.end_and_claim, store.queue.claim_jobs

        def ending(
            ends: Sequence[JobEnd], now: datetime, order: ClaimOrder, **options: Any
        ) -> tuple[list[Ended | None], Claimed | None]:
            if fail_first and not self.failed:
                self.failed += 1
                raise ValueError("refused, once")
            self._inside.now = True
            try:
                ended, claimed = end_and_claim(ends, now, order, **options)
            finally:
                self._inside.now = False
            took = [] if claimed is None else [job.id for job in claimed.jobs]
            with self._lock:
                self.ends.append(([e.job.id for e in ended if e], took))
            return ended, claimed

        def claiming(*args: Any, **kwargs: Any) -> Claimed:
            claimed = claim_jobs(*args, **kwargs)
            if not getattr(self._inside, "now", False):
                with self._lock:
                    self.claims.append([job.id for job in claimed.jobs])
            return claimed

        store.queue.end_and_claim = ending  # type: ignore[method-assign]
        store.queue.claim_jobs = claiming  # type: ignore[method-assign]


def run(store: MemoryStore, ids: list[int], told: list[Ended]) -> list[Job]:
    def on_ended(ended: Sequence[Ended]) -> None:  # what the node does with them
        told.extend(ended)
        deps.settle([e.job.id for e in ended if e.awaited])

    # Two slots: a claim of one job comes back short, so a freed slot looks for
    # nothing more; only what its end releases.
    settings = WorkerSettings(name="w1", concurrency=2, poll_interval=60)
    worker = Worker(store, Runner(python_pool=0), settings, on_ended=on_ended, settle=MET)
    deps = Dependencies(store, wake=worker.wake)
    worker.start()
    try:

        def all_ended() -> list[Job] | None:
            found = store.jobs.jobs_by_id(ids)
            return found if all(job.state.terminal for job in found) else None

        ended: list[Job] = wait_for(all_ended, timeout=20, what="the chain to end")
    finally:
        worker.stop(drain_timeout=0)
    return ended


def test_a_chains_next_job_is_claimed_in_its_upstreams_end() -> None:
    store = MemoryStore()
    ids = chain(store, 4)
    watched, told = Watched(store), list[Ended]()
    ended = run(store, ids, told)
    assert [job.state for job in ended] == [JobState.SUCCEEDED] * 4
    for upstream, nxt in itertools.pairwise(ids):
        assert ([upstream], [nxt]) in watched.ends, watched.ends
    assert [job_ids for job_ids in watched.claims if job_ids] == [[ids[0]]]  # the first only
    assert [e.job.id for e in told] == ids
    assert not any(e.awaited for e in told)  # settled with their ends: nothing left


def test_ends_whose_claim_fails_are_stored_and_settled_without_it() -> None:
    store = MemoryStore()
    ids = chain(store, 3)
    watched, told = Watched(store, fail_first=True), list[Ended]()
    ended = run(store, ids, told)
    assert watched.failed == 1
    assert [job.state for job in ended] == [JobState.SUCCEEDED] * 3
    assert told[0].job.id == ids[0]
    assert told[0].awaited  # stored alone: its edges were left to on_ended
