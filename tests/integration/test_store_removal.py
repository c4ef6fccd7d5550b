"""Removing a job takes everything that hangs on it, and its run cannot bring any of it back.

Restarting a job is one transaction that links the old job to the new one: a job
is restarted once (a second restart, even a concurrent one, is told the first).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from jobyard.events.records import LogWritten, NotificationAttempted, ProgressReported
from jobyard.models import Dependency, JobQuery, JobUpdate
from jobyard.states import TERMINAL, JobState
from jobyard.store import Store
from jobyard.store.notes import SENT
from tests.stores import T0, add, claim, in_threads, message, new_job, rows_of, stored

SAMPLE = (T0, 1.0, 1000)
_ALL = JobQuery(per_page=500)


def finish(store: Store, job_id: int, state: JobState = JobState.FAILED) -> None:
    values: dict[str, Any] = {"state": state, "finished_at": T0}
    store.jobs.update_job(JobUpdate(job_id, frozenset({JobState.RUNNING}), values), T0)


@pytest.mark.sql_only("counts the rows left in every table")
def test_removing_a_job_deletes_its_events_logs_samples_and_dependencies(store: Store) -> None:
    upstream, other = add(store, new_job(), new_job())
    [waiting] = add(store, new_job(depends_on=(Dependency(upstream.id),)))
    [running, *_] = claim(store, limit=1)
    assert running.id == upstream.id
    line = LogWritten(at=T0, seq=1, stream="stdout", line="hi")
    store.jobs.append_output(running.id, [line], [], {})
    store.monitor.add_samples(running.id, running.attempt, [SAMPLE])
    store.monitor.add_samples(other.id, 0, [SAMPLE])
    assert rows_of(store, running.id)["job_samples"] == 1
    assert rows_of(store, waiting.id)["job_dependencies"] == 1
    assert store.jobs.delete_job(waiting.id, frozenset(JobState))
    assert store.jobs.delete_job(running.id, frozenset(JobState))
    assert (
        rows_of(store, waiting.id)
        == rows_of(store, running.id)
        == dict.fromkeys(("job_events", "job_samples", "job_dependencies"), 0)
    )
    assert len(store.monitor.samples(other.id)) == 1  # another job's rows stay


@pytest.mark.sql_only("counts the rows left in every table")
def test_a_removed_jobs_run_writes_nothing_for_it(store: Store) -> None:
    add(store)
    [job] = claim(store)
    assert store.jobs.delete_job(job.id, frozenset(JobState))
    event = ProgressReported(at=T0, fraction=0.5, message=None)
    line = LogWritten(at=T0, seq=1, stream="stdout", line="still here")
    written = store.jobs.append_output(
        job.id, [line], [event], {"log_lines": 1}, worker=job.worker, attempt=job.attempt
    )
    assert written is False
    assert store.monitor.add_samples(job.id, job.attempt, [SAMPLE]) is False
    assert store.jobs.append_output(job.id, [], [event], {}) is False  # any writer, not just runs
    assert rows_of(store, job.id) == dict.fromkeys(
        ("job_events", "job_samples", "job_dependencies"), 0
    )


@pytest.mark.sql_only("the notification outbox")
def test_a_delivery_for_a_removed_job_adds_no_event_to_it(store: Store) -> None:
    [job] = add(store)
    monitor = store.monitor
    monitor.add_notifications([message(1, job_id=job.id)], None, T0)
    [item] = monitor.claim_due_notifications(T0, ({}, T0 + timedelta(minutes=1)), 10)
    assert store.jobs.delete_job(job.id, frozenset(JobState))
    event = NotificationAttempted(
        at=T0, notification_id=item["id"], event="failed", channel="ops", status=SENT, attempts=1
    )
    assert monitor.record_delivery(item["id"], {"status": SENT}, event) is not None
    assert rows_of(store, job.id)["job_events"] == 0


@pytest.mark.sql_only("counts the rows left in every table")
def test_a_run_of_an_earlier_attempt_or_another_worker_writes_nothing(store: Store) -> None:
    add(store)
    [job] = claim(store)
    line = [LogWritten(at=T0, seq=1, stream="stdout", line="x")]
    assert store.jobs.append_output(job.id, line, [], {}, worker=job.worker, attempt=job.attempt)
    assert store.monitor.add_samples(job.id, job.attempt, [SAMPLE])
    before = rows_of(store, job.id)
    stale = job.attempt - 1
    assert not store.jobs.append_output(job.id, line, [], {}, worker=job.worker, attempt=stale)
    assert not store.jobs.append_output(job.id, line, [], {}, worker="w2", attempt=job.attempt)
    assert not store.monitor.add_samples(job.id, stale, [SAMPLE])
    assert rows_of(store, job.id) == before


def restart_of(store: Store, old_id: int) -> Any:
    old = stored(store, old_id)
    new = new_job(restarted_from=old.id)
    return store.jobs.restart_job(old.id, new, T0)


def test_a_job_is_restarted_once(store: Store) -> None:
    add(store)
    [old] = claim(store)
    finish(store, old.id)
    first, created = restart_of(store, old.id)
    assert created
    assert first.restarted_from == old.id
    assert stored(store, old.id).restarted_as == first.id
    again, created = restart_of(store, old.id)
    assert not created
    assert again.id == old.id  # the old job, which names its restart
    assert again.restarted_as == first.id
    assert store.jobs.restart_job(old.id + 1000, new_job(), T0) is None


def test_a_live_job_is_not_restarted(store: Store) -> None:
    add(store)
    [live] = claim(store)
    found, created = restart_of(store, live.id)
    assert not created
    assert found.state is JobState.RUNNING
    assert found.restarted_as is None
    assert store.jobs.list_jobs(_ALL)[1] == 1


def test_concurrent_restarts_make_exactly_one_job(store: Store) -> None:
    add(store)
    [old] = claim(store)
    finish(store, old.id, JobState.SUCCEEDED)
    results = in_threads(8, lambda _: restart_of(store, old.id))
    made = [job for job, created in results if created]
    assert len(made) == 1
    assert {job.restarted_as for job, created in results if not created} == {made[0].id}
    assert stored(store, old.id).restarted_as == made[0].id
    assert store.jobs.list_jobs(_ALL)[1] == 2
    assert stored(store, old.id).state in TERMINAL
