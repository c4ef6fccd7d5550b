"""The end writer: ends stored together, each on its own merits, on the in-memory store."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from jobyard.events.records import JobTerminated
from jobyard.models import Ended, JobEnd, JobSpec, JobUpdate, NewJob
from jobyard.states import JobState
from jobyard.store.memory import MemoryStore
from jobyard.worker.ends import EndWriter

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
RUNNING = frozenset({JobState.RUNNING})


def _ends(store: MemoryStore, count: int) -> list[JobEnd]:
    new = NewJob("echo", {}, JobSpec(argv=["true"]), "default", 0, JobState.QUEUED)
    store.jobs.add_jobs([new] * count, NOW)
    claimed = store.queue.claim_jobs("w1", "host", None, count, NOW, NOW + timedelta(1)).jobs
    values = {"state": JobState.SUCCEEDED, "finished_at": NOW}
    event = JobTerminated(at=NOW, state=JobState.SUCCEEDED)
    return [JobEnd(JobUpdate(job.id, RUNNING, values, event), "w1", 1) for job in claimed]


def test_ends_written_at_once_are_stored_and_reported_together() -> None:
    store = MemoryStore()
    heard: list[list[int]] = []
    writer = EndWriter(store, lambda: NOW, lambda ended: heard.append([e.job.id for e in ended]))
    ends = _ends(store, 20)
    results: dict[int, Ended | None] = {}
    threads = [
        threading.Thread(target=lambda e=end: results.__setitem__(e.update.job_id, writer.write(e)))
        for end in ends
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    writer.close()
    assert sorted(results) == [end.update.job_id for end in ends]
    assert all(r is not None and r.job.state is JobState.SUCCEEDED for r in results.values())
    assert sorted(job_id for batch in heard for job_id in batch) == sorted(results)


def test_an_end_the_store_refuses_fails_alone() -> None:
    store = MemoryStore()
    good, bad = _ends(store, 2)
    bad = JobEnd(bad.update, bad.worker, bad.attempt, values={"no_such_field": 1})
    writer = EndWriter(store, lambda: NOW)
    outcome: dict[str, object] = {}

    def write(name: str, end: JobEnd) -> None:
        try:
            outcome[name] = writer.write(end)
        except ValueError as exc:
            outcome[name] = exc

    threads = [threading.Thread(target=write, args=a) for a in (("bad", bad), ("good", good))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    writer.close()
    assert isinstance(outcome["bad"], ValueError)
    stored = outcome["good"]
    assert isinstance(stored, Ended)
    assert stored.job.state is JobState.SUCCEEDED
    job = store.jobs.get_job(bad.update.job_id)
    assert job is not None
    assert job.state is JobState.RUNNING  # nothing of the refused end was written


def test_a_writer_closed_starts_again_on_the_next_end() -> None:
    store = MemoryStore()
    first, second = _ends(store, 2)
    writer = EndWriter(store, lambda: NOW)
    assert writer.write(first) is not None
    writer.close()
    ended = writer.write(second)
    writer.close()
    assert ended is not None
    assert ended.job.id == second.update.job_id


def test_an_end_of_another_attempt_is_not_written() -> None:
    store = MemoryStore()
    [end] = _ends(store, 1)
    writer = EndWriter(store, lambda: NOW)
    stale = JobEnd(end.update, end.worker, end.attempt + 1)
    assert writer.write(stale) is None
    writer.close()
    job = store.jobs.get_job(end.update.job_id)
    assert job is not None
    assert job.state is JobState.RUNNING
