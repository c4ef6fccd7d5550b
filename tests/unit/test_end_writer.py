"""The end writer: ends stored together, each on its own merits, on the in-memory store."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError

from jobyard.events.records import JobTerminated, LogWritten
from jobyard.models import Ended, JobEnd, JobSpec, JobUpdate, NewJob
from jobyard.states import JobState
from jobyard.store.memory import MemoryStore
from jobyard.store.protocol import Claimed, ClaimOrder, Storage
from jobyard.worker.ends import EndWriter, Flushed, Stalled

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
RUNNING = frozenset({JobState.RUNNING})
NEW = NewJob("echo", {}, JobSpec(argv=["true"]), "default", 0, JobState.QUEUED)


def _ends(store: MemoryStore, count: int) -> list[JobEnd]:
    store.jobs.add_jobs([NEW] * count, NOW)
    claimed = store.queue.claim_jobs("w1", "host", None, count, NOW, NOW + timedelta(1)).jobs
    values = {"state": JobState.SUCCEEDED, "finished_at": NOW}
    event = JobTerminated(at=NOW, state=JobState.SUCCEEDED)
    return [JobEnd(JobUpdate(job.id, RUNNING, values, event), "w1", 1) for job in claimed]


def _handed_in(
    writer: EndWriter, ends: list[JobEnd], woken: threading.Semaphore
) -> tuple[dict[int, Ended | BaseException | None], Callable[[], None]]:
    """Each end handed in from a thread of its own, as runs do; waits until all wait."""
    outcome: dict[int, Ended | BaseException | None] = {}

    def write(end: JobEnd) -> None:
        try:
            outcome[end.update.job_id] = writer.write(end)
        except Exception as exc:
            outcome[end.update.job_id] = exc

    threads = [threading.Thread(target=write, args=(end,), daemon=True) for end in ends]
    for thread in threads:
        thread.start()
    for _ in ends:
        assert woken.acquire(timeout=10)  # each end wakes the loop once

    def join() -> None:
        for thread in threads:
            thread.join(timeout=10)

    return outcome, join


def _writer(
    store: Storage, heard: list[list[int]] | None = None
) -> tuple[EndWriter, threading.Semaphore]:
    woken = threading.Semaphore(0)

    def on_ended(ended: Sequence[Ended]) -> None:
        if heard is not None:
            heard.append([e.job.id for e in ended])

    return EndWriter(store, lambda: NOW, on_ended, wake=woken.release), woken


def test_ends_handed_in_together_are_stored_in_one_flush_and_reported_together() -> None:
    store = MemoryStore()
    heard: list[list[int]] = []
    writer, woken = _writer(store, heard)
    ends = _ends(store, 20)
    outcome, join = _handed_in(writer, ends, woken)
    batch = writer.take()
    assert len(batch) == 20
    assert writer.flush(batch) is Flushed.UNASKED  # no claim asked for
    join()
    assert heard == []  # reported only when the loop says so
    writer.report()
    assert sorted(outcome) == [end.update.job_id for end in ends]
    assert all(isinstance(r, Ended) and r.job.state is JobState.SUCCEEDED for r in outcome.values())
    assert heard == [[waiting.end.update.job_id for waiting in batch]]  # in the batch's order


def test_a_flush_with_a_claim_starts_the_next_jobs_before_the_runs_hear_of_their_ends() -> None:
    store = MemoryStore()
    writer, woken = _writer(store)
    ends = _ends(store, 2)
    [queued] = store.jobs.add_jobs([NEW], NOW)
    outcome, join = _handed_in(writer, ends, woken)
    batch = writer.take()
    told_first: list[bool] = []
    took: list[Claimed] = []

    def claimed(what: Claimed) -> None:
        told_first.append(any(waiting.done.is_set() for waiting in batch))
        took.append(what)

    order = ClaimOrder("w1", "host", None, 2, NOW + timedelta(1))
    assert writer.flush(batch, order, claimed) is Flushed.CLAIMED
    join()
    assert told_first == [False]
    [what] = took
    assert [job.id for job in what.jobs] == [queued[0].id]
    assert what.more is False
    assert all(isinstance(r, Ended) for r in outcome.values())
    job = store.jobs.get_job(queued[0].id)
    assert job is not None
    assert job.state is JobState.RUNNING
    assert job.worker == "w1"


def test_an_end_the_store_refuses_fails_alone() -> None:
    store = MemoryStore()
    writer, woken = _writer(store)
    good, bad = _ends(store, 2)
    bad = JobEnd(bad.update, bad.worker, bad.attempt, values={"no_such_field": 1})
    outcome, join = _handed_in(writer, [bad, good], woken)
    [queued] = store.jobs.add_jobs([NEW], NOW)
    order = ClaimOrder("w1", "host", None, 2, NOW + timedelta(1))
    assert writer.flush(writer.take(), order) is Flushed.FAILED  # the claim went with the batch
    join()
    assert isinstance(outcome[bad.update.job_id], ValueError)
    stored = outcome[good.update.job_id]
    assert isinstance(stored, Ended)
    assert stored.job.state is JobState.SUCCEEDED
    job = store.jobs.get_job(bad.update.job_id)
    assert job is not None
    assert job.state is JobState.RUNNING  # nothing of the refused end was written
    again = store.jobs.get_job(queued[0].id)
    assert again is not None
    assert again.state is JobState.QUEUED


def test_a_closed_writer_hands_ends_back_to_their_runs() -> None:
    store = MemoryStore()
    writer, woken = _writer(store)
    waiting, later = _ends(store, 2)
    outcome, join = _handed_in(writer, [waiting], woken)
    writer.close()
    join()
    assert isinstance(outcome[waiting.update.job_id], Stalled)
    with pytest.raises(Stalled):
        writer.write(later)
    job = store.jobs.get_job(later.update.job_id)
    assert job is not None
    assert job.state is JobState.RUNNING


def test_an_end_of_another_attempt_is_not_written() -> None:
    store = MemoryStore()
    writer, woken = _writer(store)
    [end] = _ends(store, 1)
    stale = JobEnd(end.update, end.worker, end.attempt + 1)
    outcome, join = _handed_in(writer, [stale], woken)
    writer.flush(writer.take())
    join()
    assert outcome[end.update.job_id] is None
    job = store.jobs.get_job(end.update.job_id)
    assert job is not None
    assert job.state is JobState.RUNNING


def test_the_runs_hear_of_their_ends_even_when_a_claimed_job_cannot_start() -> None:
    store = MemoryStore()
    writer, woken = _writer(store)
    ends = _ends(store, 2)
    store.jobs.add_jobs([NEW], NOW)
    outcome, join = _handed_in(writer, ends, woken)

    def cannot_start(claimed: Claimed) -> None:
        raise RuntimeError("no process for it")

    order = ClaimOrder("w1", "host", None, 2, NOW + timedelta(1))
    with pytest.raises(RuntimeError):
        writer.flush(writer.take(), order, cannot_start)
    join()
    assert all(isinstance(outcome[end.update.job_id], Ended) for end in ends)


def test_ends_whose_commit_went_unseen_are_recognised_not_written_twice() -> None:
    """The connection broke after the commit: the try again finds them stored."""
    store = MemoryStore()
    writer, woken = _writer(store)
    ends = [
        JobEnd(end.update, end.worker, end.attempt, logs=[_line(end.update.job_id)])
        for end in _ends(store, 3)
    ]
    commit = store.jobs.end_jobs
    tries: list[int] = []

    def commit_then_break(batch: Sequence[JobEnd], now: datetime) -> list[Ended | None]:
        tries.append(len(batch))
        written = commit(batch, now)
        if len(tries) == 1:
            raise OperationalError("COMMIT", None, ConnectionResetError("connection reset"))
        return written

    store.jobs.end_jobs = commit_then_break  # type: ignore[method-assign]
    outcome, join = _handed_in(writer, ends, woken)
    assert writer.flush(writer.take()) is Flushed.UNASKED
    join()
    assert tries == [3, 3]
    for end in ends:
        ended = outcome[end.update.job_id]
        assert isinstance(ended, Ended)
        assert ended.job.state is JobState.SUCCEEDED
        lines = store.jobs.log_lines(end.update.job_id)
        assert [line.line for line in lines] == [f"job {end.update.job_id}"]


def _line(job_id: int) -> LogWritten:
    return LogWritten(at=NOW, seq=1, stream="stdout", line=f"job {job_id}")
