"""A step of the worker's tick that fails holds up no job's end, and loses no claim.

The worker's loop stores the ends its runs hand it, after the tick's other
steps (controls, heartbeat, drain). Here the heartbeat fails at every tick once
a job runs (a stand-in for a bug, or a statement the database keeps refusing):
the run must get its end back and store it itself, not wait for a tick that
never gets that far. A claim whose answer is lost (the connection broke after
its commit) took its jobs all the same: the worker must run them, not leave them
to their lease's lapse. The in-memory store keeps it fast; the jobs are real
processes.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import OperationalError

from jobyard.models import Ended, Job, JobEnd, JobSpec, NewJob
from jobyard.runner.local import Runner
from jobyard.states import JobState
from jobyard.store.memory import MemoryStore
from jobyard.store.protocol import Claimed, ClaimOrder
from jobyard.worker.loop import Worker, WorkerSettings
from tests.harness import wait_for


def test_a_job_ends_while_the_workers_heartbeat_keeps_failing() -> None:
    store = MemoryStore()
    renew = store.queue.renew_leases
    failed: list[int] = []

    def renew_unless_running(
        worker: str, now: datetime, until: datetime, job_ids: Collection[int] | None = None
    ) -> list[int]:
        if job_ids:
            failed.append(len(job_ids))
            raise RuntimeError("heartbeat refused")
        return renew(worker, now, until, job_ids)

    store.queue.renew_leases = renew_unless_running  # type: ignore[method-assign]
    now = datetime.now(UTC)
    new = NewJob("t", {}, JobSpec(argv=["true"]), "default", 0, JobState.QUEUED)
    [(job, _)] = store.jobs.add_jobs([new], now)
    settings = WorkerSettings(name="w1", concurrency=1, heartbeat_interval=0, poll_interval=0.05)
    worker = Worker(store, Runner(python_pool=0), settings)
    worker.start()
    try:
        ended = wait_for(
            lambda: (found := store.jobs.get_job(job.id)) and found.state.terminal and found,
            timeout=20,
            what="the job to end",
        )
        assert ended.state is JobState.SUCCEEDED
        assert failed  # its ticks did fail while it ran
    finally:
        worker.stop(drain_timeout=0)
    assert store.workers.get_worker("w1") is None


def _lost_answer(what: str) -> OperationalError:
    return OperationalError(what, {}, Exception("server closed the connection unexpectedly"))


def _queued(store: MemoryStore, count: int) -> list[Job]:
    new = NewJob("t", {}, JobSpec(argv=["true"]), "default", 0, JobState.QUEUED)
    return [job for job, _ in store.jobs.add_jobs([new] * count, datetime.now(UTC))]


def _ended(store: MemoryStore, jobs: list[Job]) -> list[Job]:
    def all_ended() -> list[Job] | None:
        found = store.jobs.jobs_by_id([job.id for job in jobs])
        return found if all(job.state.terminal for job in found) else None

    # Far below the lease: a job only the lease's lapse would recover fails here.
    ended: list[Job] = wait_for(all_ended, timeout=20, what="the jobs to end")
    return ended


def _worker(store: MemoryStore) -> Worker:
    settings = WorkerSettings(name="w1", concurrency=1, lease_timeout=300, poll_interval=0.05)
    return Worker(store, Runner(python_pool=0), settings)


def _lose_a_claims_answer(store: MemoryStore) -> list[list[int]]:
    """The first claim that takes jobs commits, then its answer is lost; what it took."""
    claim = store.queue.claim_jobs
    lost: list[list[int]] = []

    def claim_then_lose_the_answer(*args: Any, **kwargs: Any) -> Claimed:
        claimed = claim(*args, **kwargs)
        if claimed.jobs and not lost:
            lost.append([job.id for job in claimed.jobs])
            raise _lost_answer("claim")
        return claimed

    store.queue.claim_jobs = claim_then_lose_the_answer  # type: ignore[method-assign]
    return lost


def _run_one(store: MemoryStore) -> tuple[Job, Job]:
    """A job queued and run by a worker: as submitted, and as it ended."""
    [job] = _queued(store, 1)
    worker = _worker(store)
    worker.start()
    try:
        [ended] = _ended(store, [job])
    finally:
        worker.stop(drain_timeout=0)
    return job, ended


def test_a_job_claimed_in_a_commit_the_worker_did_not_see_still_runs_on_its_first_attempt() -> None:
    store = MemoryStore()
    lost = _lose_a_claims_answer(store)
    job, ended = _run_one(store)
    assert lost == [[job.id]]  # the claim did take it, and its answer was lost
    assert (ended.state, ended.attempt) == (JobState.SUCCEEDED, 1)


def test_a_failed_look_for_an_unseen_claim_is_made_again() -> None:
    """The claim's answer was lost, and so was the first look for what it took (the
    database still away): the next tick looks again, rather than leave the job to its
    lease's lapse."""
    store = MemoryStore()
    look = store.queue.live_jobs_on_host
    lost = _lose_a_claims_answer(store)
    looks: list[str] = []

    def look_once_in_vain(host: str) -> list[Job]:
        if lost:  # the looks for what the claim took (the worker's start looks too)
            looks.append(host)
            if len(looks) == 1:
                raise _lost_answer("look")
        return look(host)

    store.queue.live_jobs_on_host = look_once_in_vain  # type: ignore[method-assign]
    job, ended = _run_one(store)
    assert lost == [[job.id]]
    assert len(looks) >= 2  # the first look failed
    assert (ended.state, ended.attempt) == (JobState.SUCCEEDED, 1)


def test_a_job_claimed_with_an_end_in_a_commit_the_worker_did_not_see_still_runs() -> None:
    store = MemoryStore()
    end_and_claim = store.queue.end_and_claim
    lost: list[list[int]] = []

    def store_then_lose_the_answer(
        ends: Sequence[JobEnd], now: datetime, order: ClaimOrder, **options: Any
    ) -> tuple[list[Ended | None], Claimed | None]:
        ended, claimed = end_and_claim(ends, now, order, **options)
        if claimed is not None and claimed.jobs and not lost:
            lost.append([job.id for job in claimed.jobs])
            raise _lost_answer("end and claim")
        return ended, claimed

    store.queue.end_and_claim = store_then_lose_the_answer  # type: ignore[method-assign]
    jobs = _queued(store, 3)
    worker = _worker(store)
    worker.start()
    try:
        ended = _ended(store, jobs)
    finally:
        worker.stop(drain_timeout=0)
    assert lost == [[jobs[1].id]]  # the second job, claimed as the first ended
    assert [(job.state, job.attempt) for job in ended] == [(JobState.SUCCEEDED, 1)] * 3


def test_a_run_fenced_during_an_outage_is_not_started_again_once_it_ends() -> None:
    """Its lease lapsed while the database was away: the worker stopped it (the job is
    the scheduler's to recover). The failed claims of the outage must not have the
    worker take it for one a lost answer took, and start it anew at the same attempt."""
    store = MemoryStore()
    claim, renew = store.queue.claim_jobs, store.queue.renew_leases
    outage = threading.Event()
    claims_after: list[int] = []

    def claim_jobs(*args: Any, **kwargs: Any) -> Claimed:
        if outage.is_set():
            raise _lost_answer("claim")
        claimed = claim(*args, **kwargs)
        if claimed.jobs and not claims_after:
            outage.set()  # the database goes away right after this claim
        claims_after.append(len(claimed.jobs))
        return claimed

    def renew_leases(*args: Any, **kwargs: Any) -> list[int]:
        if outage.is_set():
            raise _lost_answer("heartbeat")
        return renew(*args, **kwargs)

    store.queue.claim_jobs = claim_jobs  # type: ignore[method-assign]
    store.queue.renew_leases = renew_leases  # type: ignore[method-assign]
    new = NewJob("t", {}, JobSpec(argv=["sleep", "30"]), "default", 0, JobState.QUEUED)
    [(job, _)] = store.jobs.add_jobs([new], datetime.now(UTC))
    settings = WorkerSettings(
        name="w1", concurrency=2, lease_timeout=1.0, heartbeat_interval=0.1, poll_interval=0.05
    )
    worker = Worker(store, Runner(python_pool=0), settings)
    launched: list[tuple[int, int]] = []
    launch = worker._launch

    def counted(claimed: Job, leased: float) -> None:
        launched.append((claimed.id, claimed.attempt))
        launch(claimed, leased)

    worker._launch = counted  # type: ignore[method-assign]
    worker.start()
    try:
        wait_for(lambda: launched and job.id not in worker._runs, timeout=30, what="the fence")
        outage.clear()
        seen = len(claims_after)
        wait_for(lambda: len(claims_after) >= seen + 3, timeout=30, what="claims that work")
    finally:
        worker.stop(drain_timeout=0)
    assert launched == [(job.id, 1)]


class _AdoptedRun:
    """Stands in for a run the sweeper's thread adopts: alive, records what it is asked."""

    fenced = False
    leased = None

    def __init__(self) -> None:
        self.asked: list[object] = []

    def is_alive(self) -> bool:
        return True

    def request(self, message: object) -> None:
        self.asked.append(message)


def test_a_run_adopted_while_the_heartbeat_renews_is_not_abandoned() -> None:
    """The sweeper adopts a dead worker's job from a thread of its own. A heartbeat
    renews the runs it had when it began; one adopted during the renewal was not
    asked about, so it is not in the answer, and must not be taken for lost."""
    store = MemoryStore()
    worker = Worker(store, Runner(python_pool=0), WorkerSettings(name="w1", concurrency=1))
    adopted = _AdoptedRun()
    renew = store.queue.renew_leases

    def renew_while_adopting(
        name: str, now: datetime, until: datetime, job_ids: Collection[int] | None = None
    ) -> list[int]:
        worker._runs[7] = adopted  # type: ignore[assignment]  # the sweeper's thread, meanwhile
        return renew(name, now, until, job_ids)

    store.queue.renew_leases = renew_while_adopting  # type: ignore[method-assign]
    worker._heartbeat()
    assert adopted.asked == []


def test_a_job_claimed_as_the_worker_stops_is_handed_back_not_left_to_its_lease() -> None:
    """The claim was under way when the stop began, and committed after the loop was told
    to stop: no run starts the job, and the stop requeues it with its attempt given back."""
    store = MemoryStore()
    claim = store.queue.claim_jobs
    worker = _worker(store)
    taken: list[int] = []

    def claim_until_the_stop(*args: Any, **kwargs: Any) -> Claimed:
        claimed = claim(*args, **kwargs)
        if claimed.jobs and not taken:
            taken.extend(job.id for job in claimed.jobs)
            stopping = threading.Thread(target=worker.stop, kwargs={"drain_timeout": 0})
            stopping.start()
            wait_for(lambda: worker._stopping.is_set(), timeout=20, what="the stop to begin")
        return claimed

    store.queue.claim_jobs = claim_until_the_stop  # type: ignore[method-assign]
    [job] = _queued(store, 1)
    worker.start()
    assert worker.stopped.wait(30)
    assert taken == [job.id]
    assert worker.unreturned == []
    again = store.jobs.get_job(job.id)
    assert again is not None
    assert (again.state, again.attempt, again.worker) == (JobState.QUEUED, 0, None)
    [line] = [line.line for line in store.jobs.log_lines(job.id)]
    assert line == "handed back: worker w1 stopped before it started the job"
