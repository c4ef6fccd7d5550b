"""A job whose worker was lost: its log says so, and ended for good it goes to the hook
that cancels its cluster job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobyard.events.records import LogWritten
from jobyard.models import Job, JobSpec, NewJob
from jobyard.schedules.scheduler import Scheduler
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.memory import MemoryStore

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _claimed(store: Store | MemoryStore, max_attempts: int) -> Job:
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


def test_the_log_of_a_job_lost_with_its_lease_says_which_attempt_and_why(
    store: Store | MemoryStore,
) -> None:
    job = _claimed(store, max_attempts=2)
    printed = [LogWritten(at=NOW, seq=seq, stream="stdout", line=f"out {seq}") for seq in (1, 2)]
    assert store.jobs.append_output(job.id, printed, [], {"log_lines": 2})
    later = NOW + timedelta(minutes=5)
    Scheduler(store).run_once(later)

    retried = store.jobs.get_job(job.id)
    assert retried is not None
    assert (retried.state, retried.log_lines) == (JobState.SCHEDULED, 3)  # its backoff
    said = store.jobs.log_lines(job.id)
    assert [(line.seq, line.stream, line.line) for line in said[2:]] == [
        (3, "system", "attempt 1 lost: its worker w1 did not renew the lease in time")
    ]
    # Applied once: the next pass finds no expired lease, and writes nothing more.
    Scheduler(store).run_once(later + timedelta(minutes=5))
    assert len(store.jobs.log_lines(job.id)) == 3
