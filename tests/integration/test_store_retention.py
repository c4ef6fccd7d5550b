"""Retention removes old rows of finished work in small batches, and never anything live.

The same contract on every backend (memory, SQLite, PostgreSQL, MariaDB): a
finished job older than the age goes with everything it owns; log lines and
events of old finished jobs go and leave a mark on the job; a running job, a
job that others still wait for and events a durable reader has not read stay.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from jobyard.access.records import AuditEntry, AuditQuery
from jobyard.events.records import LogWritten, ProgressReported
from jobyard.models import Dependency, JobUpdate, RunState
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.notes import PENDING, SENT
from jobyard.store.protocol import Storage
from tests.stores import T0, add, claim, message, new_job, stored

LATER = T0 + timedelta(days=1)  # the cutoff: jobs finished at T0 are older
MANY = 1000


def finished(store: Storage, lines: int = 2, state: JobState = JobState.FAILED) -> int:
    """A job that ran, wrote ``lines`` log lines, a progress event and a sample, and ended at T0."""
    [job] = add(store)  # type: ignore[arg-type]
    [running] = [j for j in claim(store) if j.id == job.id]  # type: ignore[arg-type]
    logs = [LogWritten(at=T0, seq=i + 1, stream="stdout", line=f"l{i}") for i in range(lines)]
    progress = ProgressReported(at=T0, fraction=0.5, message=None)
    assert store.jobs.append_output(job.id, logs, [progress], {})
    assert store.monitor.add_samples(job.id, running.attempt, [(T0, 1.0, 1000)])
    values: dict[str, Any] = {"state": state, "finished_at": T0}
    assert store.jobs.update_job(JobUpdate(job.id, frozenset({JobState.RUNNING}), values), T0)
    return job.id


def running(store: Storage) -> int:
    [job] = add(store)  # type: ignore[arg-type]
    claim(store)  # type: ignore[arg-type]
    line = LogWritten(at=T0, seq=1, stream="stdout", line="live")
    assert store.jobs.append_output(job.id, [line], [], {})
    return job.id


def kinds(store: Storage, job_id: int) -> list[str]:
    return [event.record.kind for event in store.jobs.job_events(job_id)]


def test_old_finished_jobs_go_with_everything_they_own(store: Storage) -> None:
    old, live = finished(store), running(store)
    assert store.retention.prunable("jobs", LATER) == 1
    done = store.retention.prune_jobs(LATER, MANY, LATER)
    assert done.owned >= 4
    assert done.more
    done = store.retention.prune_jobs(LATER, MANY, LATER)
    assert (done.rows, done.more) == (1, True)
    assert store.retention.prune_jobs(LATER, MANY, LATER).rows == 0
    assert store.jobs.get_job(old) is None
    assert store.jobs.job_events(old) == []
    assert store.retention.prunable("samples", LATER) == 0
    assert stored(store, live).state is JobState.RUNNING  # type: ignore[arg-type]
    assert kinds(store, live)[-1] == "log"


def test_young_jobs_and_jobs_others_wait_for_stay(store: Storage) -> None:
    young, awaited = finished(store), finished(store)
    add(store, new_job(depends_on=(Dependency(awaited, met=False),)))  # type: ignore[arg-type]
    assert store.retention.prunable("jobs", T0) == 0  # finished at T0: not before T0
    for _ in range(3):
        store.retention.prune_jobs(T0, MANY, LATER)
    assert store.jobs.get_job(young) is not None
    assert store.retention.prunable("jobs", LATER) == 1  # the young one, not the awaited one
    for _ in range(3):
        store.retention.prune_jobs(LATER, MANY, LATER)
    assert store.jobs.get_job(young) is None
    assert store.jobs.get_job(awaited) is not None


def test_logs_of_old_finished_jobs_go_in_batches_and_mark_the_job(store: Storage) -> None:
    old, live = finished(store, lines=5), running(store)
    assert store.retention.prunable("logs", LATER) == 5
    first = store.retention.prune_logs(LATER, 3, LATER)
    assert (first.rows, first.owned, first.more) == (3, 0, True)  # bounded by the batch
    second = store.retention.prune_logs(LATER, 3, LATER)
    assert (second.rows, second.owned) == (2, 1)  # the rest, and the job is marked
    assert not store.retention.prune_logs(LATER, 3, LATER).more
    assert store.jobs.log_lines(old) == []
    assert "progress" in kinds(store, old)  # other events stay
    assert stored(store, old).logs_pruned_at == LATER  # type: ignore[arg-type]
    assert stored(store, old).events_pruned_at is None  # type: ignore[arg-type]
    assert len(store.jobs.log_lines(live)) == 1
    newest_log = max(e.id for e in store.jobs.job_events(live))
    assert 0 < store.retention.pruned_through() < newest_log


def test_events_of_old_finished_jobs_go_and_log_lines_stay(store: Storage) -> None:
    old = finished(store, lines=2)
    for _ in range(3):
        store.retention.prune_events(LATER, MANY, LATER)
    assert kinds(store, old) == ["log", "log"]
    assert stored(store, old).events_pruned_at == LATER  # type: ignore[arg-type]
    assert store.retention.prunable("events", LATER) == 0


def test_samples_of_old_finished_jobs_go(store: Storage) -> None:
    finished(store), finished(store)
    assert store.retention.prunable("samples", LATER) == 2
    assert store.retention.prune_samples(LATER, 1, LATER) == (1, 0, True)
    store.retention.prune_samples(LATER, 1, LATER)
    assert store.retention.prunable("samples", LATER) == 0


@pytest.mark.sql_only("the notification outbox and the audit log")
def test_sent_notifications_and_old_audit_entries_go(store: Store) -> None:
    rows = [message(1, status=SENT), message(2, status=PENDING), message(3, status=SENT)]
    store.monitor.add_notifications(rows, None, T0)
    entries = [AuditEntry(at=T0 + timedelta(hours=h), actor="a", via="cli", action="x", target="t")
               for h in (0, 48)]  # fmt: skip
    store.access.record(entries)
    assert store.retention.prunable("notifications", LATER) == 2
    assert store.retention.prune_notifications(LATER, 1, LATER) == (1, 0, True)
    assert store.retention.prune_notifications(LATER, 5, LATER) == (1, 0, False)
    assert [n["status"] for n in store.monitor.notifications(1, 10)[0]] == [PENDING]
    assert store.retention.prune_audit(LATER, 5, LATER).rows == 1
    left, total = store.access.find_audit(AuditQuery())
    assert total == 1
    assert left[0].at == T0 + timedelta(hours=48)


@pytest.mark.sql_only("durable readers of the event log (cursors)")
def test_events_a_reader_has_not_read_stay(store: Store) -> None:
    old = finished(store, lines=3)
    [first, *_] = store.jobs.job_events(old)
    store.monitor.add_notifications([], ("notifier", first.id), T0)  # read up to the first
    # What a dry run counts is what goes (it counted the job, and its unread lines).
    assert store.retention.prunable("jobs", LATER) == 0
    assert store.retention.prunable("logs", LATER) == 0  # the first event is no log line
    for _ in range(3):
        store.retention.prune_logs(LATER, MANY, LATER)
        store.retention.prune_jobs(LATER, MANY, LATER)
    assert store.jobs.get_job(old) is not None  # kept until the reader has read its events
    assert next(e.id for e in store.jobs.job_events(old)) > first.id
    assert store.retention.pruned_through() == first.id


def workflow_run(store: Storage, nodes: int, state: RunState | None = RunState.SUCCEEDED) -> int:
    """A run of ``nodes`` node jobs; ended at T0 with ``state`` (None: still running)."""
    run, _ = store.runs.add_workflow_run("nightly", {}, "api", [new_job()] * nodes, [], T0)
    if state is not None:
        values = {"state": state, "finished_at": T0}
        assert store.runs.update_run(run.id, {RunState.RUNNING}, values, T0) is not None
    return run.id


def end_jobs(store: Storage, run_id: int) -> None:
    for job in store.runs.run_jobs(run_id):
        values: dict[str, Any] = {"state": JobState.SUCCEEDED, "finished_at": T0}
        assert store.jobs.update_job(JobUpdate(job.id, frozenset({job.state}), values), T0)


def test_ended_runs_go_once_their_jobs_have_gone(store: Storage) -> None:
    empty, done, live = workflow_run(store, 0), workflow_run(store, 2), workflow_run(store, 1, None)
    end_jobs(store, done)
    end_jobs(store, live)  # a running run: its jobs stay, and so does the run
    assert store.retention.prunable("runs", LATER) == 1  # the run without jobs
    assert store.retention.prunable("runs", T0) == 0  # ended at T0: not before T0
    assert store.retention.prune_runs(LATER, 1, LATER) == (1, 0, True)
    assert store.runs.get_run(empty) is None
    assert store.runs.get_run(done) is not None  # its jobs are still there
    for _ in range(4):
        store.retention.prune_jobs(LATER, MANY, LATER)
    assert store.runs.run_jobs(done) == []
    assert len(store.runs.run_jobs(live)) == 1
    assert store.retention.prune_runs(LATER, MANY, LATER) == (1, 0, False)
    assert store.runs.get_run(done) is None
    running = store.runs.get_run(live)
    assert running is not None
    assert running.state is RunState.RUNNING


@pytest.mark.sql_only("schedule fires")
def test_old_fires_go_but_each_schedules_newest_stays(store: Store) -> None:
    hours = [T0 + timedelta(hours=h) for h in range(4)]
    for when in hours:
        assert store.schedules.claim_fire("hourly", when, when)
    assert store.schedules.claim_fire("once", T0, T0)
    cutoff = hours[-1] + timedelta(days=1)  # every fire is older than that
    assert store.retention.prunable("fires", cutoff) == 3  # not the newest of each
    assert store.retention.prune_fires(cutoff, 2, cutoff) == (2, 0, True)
    assert store.retention.prune_fires(cutoff, 2, cutoff) == (1, 0, False)
    assert store.retention.prunable("fires", cutoff) == 0
    last = store.schedules.last_fire("hourly")
    assert last is not None
    assert last.fire_time == hours[-1]
    assert store.schedules.last_fire("once") is not None
    assert not store.schedules.claim_fire("hourly", hours[-1], cutoff)  # still fired once


@pytest.mark.sql_only("schedule fires")
def test_the_newest_fire_that_started_a_job_stays(store: Store) -> None:
    """Fires skipped after it must not let it go: overlap checks whether its job ended."""
    hours = [T0 + timedelta(hours=h) for h in range(4)]
    for when, job_id in zip(hours, [7, 8, None, None], strict=True):  # two skipped fires last
        assert store.schedules.claim_fire("hourly", when, when, job_id)
    cutoff = hours[-1] + timedelta(days=1)
    assert store.retention.prunable("fires", cutoff) == 2  # the first and the third
    store.retention.prune_fires(cutoff, MANY, cutoff)
    started = store.schedules.last_started_fire("hourly")
    assert started is not None
    assert (started.fire_time, started.job_id) == (hours[1], 8)
    last = store.schedules.last_fire("hourly")
    assert last is not None
    assert last.fire_time == hours[-1]
