"""A job whose worker was lost, ended for good, goes to the hook that cancels its cluster job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobyard.models import Job, JobSpec, NewJob
from jobyard.schedules.scheduler import Scheduler
from jobyard.states import JobState
from jobyard.store.memory import MemoryStore

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _claimed(store: MemoryStore, max_attempts: int) -> Job:
    spec = JobSpec(argv=["true"])
    new = NewJob("t", {}, spec, "default", 0, JobState.QUEUED, max_attempts=max_attempts)
    store.jobs.add_jobs([new], NOW)
    [job] = store.queue.claim_jobs("w1", "host", None, 1, NOW, NOW + timedelta(seconds=1)).jobs
    return job


def test_a_lost_job_with_no_attempt_left_is_handed_to_on_lost() -> None:
    store = MemoryStore()
    job = _claimed(store, max_attempts=1)
    lost: list[Job] = []
    scheduler = Scheduler(store, on_lost=lost.append)
    scheduler.run_once(NOW + timedelta(minutes=5))
    assert [(j.id, j.state, j.reason) for j in lost] == [(job.id, JobState.FAILED, "worker_lost")]


def test_a_lost_job_that_is_retried_is_not() -> None:
    store = MemoryStore()
    _claimed(store, max_attempts=2)
    lost: list[Job] = []
    scheduler = Scheduler(store, on_lost=lost.append)
    scheduler.run_once(NOW + timedelta(minutes=5))
    assert lost == []
