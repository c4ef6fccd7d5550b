"""A job lost with its worker: its log says which attempt and why, in the line after
the last one stored, and a lease renewed since it was found lapsed keeps the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobyard import outcomes
from jobyard.events.records import LogWritten
from jobyard.models import Job, JobSpec, JobUpdate, NewJob
from jobyard.schedules.scheduler import Scheduler
from jobyard.states import LIVE, Control, JobState
from jobyard.store import Store
from jobyard.store.memory import MemoryStore

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
LEASE = timedelta(seconds=30)
LATER = NOW + timedelta(minutes=5)
LOST = "attempt 1 lost: its worker w1 did not renew the lease in time"


def _running(store: Store | MemoryStore, lines: int) -> Job:
    new = NewJob("t", {}, JobSpec(argv=["true"]), "default", 0, JobState.QUEUED, max_attempts=2)
    store.jobs.add_jobs([new], NOW)
    [job] = store.queue.claim_jobs("w1", "host", None, 1, NOW, NOW + LEASE).jobs
    _print(store, job, range(1, lines + 1))
    return job


def _print(store: Store | MemoryStore, job: Job, seqs: range) -> None:
    printed = [LogWritten(at=NOW, seq=seq, stream="stdout", line=f"out {seq}") for seq in seqs]
    written = store.jobs.append_output(
        job.id, printed, [], {"log_lines": seqs.stop - 1}, worker="w1", attempt=1
    )
    assert written


def _said(store: Store | MemoryStore, job: Job) -> list[tuple[int, str, str]]:
    return [(line.seq, line.stream, line.line) for line in store.jobs.log_lines(job.id)]


def test_the_log_of_a_job_lost_with_its_lease_says_which_attempt_and_why(
    store: Store | MemoryStore,
) -> None:
    job = _running(store, lines=2)
    Scheduler(store).run_once(LATER)

    retried = store.jobs.get_job(job.id)
    assert retried is not None
    assert (retried.state, retried.log_lines) == (JobState.SCHEDULED, 3)  # its backoff
    assert _said(store, job)[2:] == [(3, "system", LOST)]
    # Applied once: the next pass finds no expired lease, and writes nothing more.
    Scheduler(store).run_once(LATER + timedelta(minutes=5))
    assert len(_said(store, job)) == 3


def test_lines_the_worker_stored_after_the_job_was_found_lost_come_before_the_note(
    store: Store | MemoryStore,
) -> None:
    job = _running(store, lines=1)
    [found] = store.queue.expired_leases(LATER)
    _print(store, job, range(2, 4))  # the slow worker still writes, before the recovery
    why = "its worker w1 did not renew the lease in time"
    [ended] = store.jobs.end_jobs([outcomes.lost_end(found, LATER, why, lapsed=True)], LATER)
    assert ended is not None
    assert ended.job.log_lines == 4
    assert _said(store, job) == [
        (1, "stdout", "out 1"),
        (2, "stdout", "out 2"),
        (3, "stdout", "out 3"),
        (4, "system", LOST),
    ]


def test_a_lease_renewed_after_the_job_was_found_lost_keeps_the_job(
    store: Store | MemoryStore,
) -> None:
    job = _running(store, lines=1)
    [found] = store.queue.expired_leases(LATER)
    assert store.queue.renew_leases("w1", LATER, LATER + LEASE, [job.id]) == [job.id]
    why = "its worker w1 did not renew the lease in time"
    end = outcomes.lost_end(found, LATER, why, lapsed=True)
    assert store.jobs.end_jobs([end], LATER) == [None]
    kept = store.jobs.get_job(job.id)
    assert kept is not None
    assert (kept.state, kept.worker, kept.log_lines) == (JobState.RUNNING, "w1", 1)


def _set(store: Store | MemoryStore, job: Job, state: JobState, control: Control | None) -> None:
    values = {"state": state, "control": control}
    assert store.jobs.update_job(JobUpdate(job.id, frozenset(LIVE), values), NOW) is not None


@pytest.mark.parametrize(
    ("state", "control", "after"),
    [
        (JobState.PAUSED, None, JobState.HELD),
        (JobState.RUNNING, Control.PAUSE, JobState.HELD),  # a pause asked, not carried out
        (JobState.PAUSED, Control.RESUME, JobState.SCHEDULED),  # a resume asked: runs again
        (JobState.PAUSED, Control.KILL, JobState.KILLED),
    ],
)
def test_a_job_lost_while_paused_stays_paused_held_until_resumed(
    store: Store | MemoryStore, state: JobState, control: Control | None, after: JobState
) -> None:
    job = _running(store, lines=0)
    [found] = store.queue.expired_leases(LATER)  # read running: the row decides
    _set(store, job, state, control)
    why = "its worker w1 did not renew the lease in time"
    [ended] = store.jobs.end_jobs([outcomes.lost_end(found, LATER, why, lapsed=True)], LATER)
    assert ended is not None
    assert (ended.job.state, ended.job.control) == (after, None)
    stored = store.jobs.get_job(job.id)
    assert stored is not None
    assert stored.state is after
    # Nothing runs it by itself: a pass of the scheduler leaves a held job alone.
    Scheduler(store).run_once(LATER + timedelta(hours=1))
    again = store.jobs.get_job(job.id)
    assert again is not None
    assert again.state is (JobState.QUEUED if after is JobState.SCHEDULED else after)
