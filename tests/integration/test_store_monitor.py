"""The monitoring store on every backend: the outbox, samples, the SLA history, stats."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from jobyard.events.records import (
    JobRescheduled,
    JobTerminated,
    NotificationAttempted,
    SlaBreached,
)
from jobyard.jobtypes.catalog import Catalog
from jobyard.manager import JobManager
from jobyard.models import EventKind, JobUpdate, WorkerInfo
from jobyard.notify.channels import parse_notifications
from jobyard.notify.notifier import Notifier
from jobyard.outcomes import RunEnd, finished
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.histograms import BOUNDS
from jobyard.store.notes import FAILED, PENDING, SENT
from jobyard.store.rows import event_row
from jobyard.store.tables import job_events, workers
from tests.stores import T0, add, assert_fields, claim, message, new_job, stored

ONE_S = timedelta(seconds=1)


def wait_until(probe: Callable[[], int], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


@pytest.mark.sql_only("the notification outbox")
def test_messages_and_the_cursor_are_stored_together_and_known_by_source(store: Store) -> None:
    monitor = store.monitor
    assert monitor.cursor("notifier") is None
    monitor.add_notifications([message(7), message(7, "hook")], ("notifier", 9), T0)
    monitor.add_notifications([message(8)], ("notifier", 12), T0)
    assert monitor.cursor("notifier") == 12
    assert monitor.known_sources([6, 7, 8]) == {7, 8}
    items, total = monitor.notifications(1, 10, status=[PENDING], event=["failed"])
    assert total == 3
    assert {item["channel"] for item in items} == {"mail", "hook"}
    assert items[0]["recipients"] == ["ops@example.test"]


@pytest.mark.sql_only("the notification outbox")
def test_due_messages_are_taken_once_until_their_mark_runs_out(store: Store) -> None:
    monitor = store.monitor
    later = message(2, next_attempt_at=T0 + 10 * ONE_S)
    monitor.add_notifications([message(1), later], None, T0)
    taken = monitor.claim_due_notifications(T0, ({}, T0 + 30 * ONE_S), 10)
    assert [item["data"] for item in taken] == [{"event": "failed"}]  # the later one waits
    assert monitor.claim_due_notifications(T0 + ONE_S, ({}, T0 + 30 * ONE_S), 10) == []  # taken
    again = monitor.claim_due_notifications(T0 + 31 * ONE_S, ({}, T0 + 60 * ONE_S), 10)
    assert len(again) == 2  # the mark ran out (a dispatcher died), and the later one is due


@pytest.mark.sql_only("the notification outbox")
def test_concurrent_dispatchers_never_take_the_same_message(store: Store) -> None:
    store.monitor.add_notifications([message(i) for i in range(1, 41)], None, T0)
    taken: list[int] = []
    lock = threading.Lock()
    others = [Store(str(store.engine.url.render_as_string(hide_password=False))) for _ in range(4)]

    def dispatcher(other: Store) -> None:
        while batch := other.monitor.claim_due_notifications(T0, ({}, T0 + 60 * ONE_S), 3):
            with lock:
                taken.extend(item["id"] for item in batch)

    threads = [threading.Thread(target=dispatcher, args=(other,)) for other in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for other in others:
        other.close()
    assert sorted(taken) == sorted(set(taken))
    assert len(taken) == 40


@pytest.mark.sql_only("the notification outbox")
def test_a_delivery_outcome_is_recorded_once_with_its_event(store: Store) -> None:
    [job] = add(store)
    monitor = store.monitor
    monitor.add_notifications([message(1, job_id=job.id)], None, T0)
    [item] = monitor.claim_due_notifications(T0, ({}, T0 + 60 * ONE_S), 10)
    event = NotificationAttempted(
        at=T0, notification_id=item["id"], event="failed", channel="hook", status=SENT, attempts=1
    )
    done = monitor.record_delivery(
        item["id"], {"status": SENT, "attempts": 1, "sent_at": T0}, event
    )
    assert done is not None
    assert (done["status"], done["attempts"], done["sent_at"]) == (SENT, 1, T0)
    assert monitor.record_delivery(item["id"], {"status": FAILED}, event) is None  # not pending
    kinds = [e.kind for e in store.jobs.job_events(job.id)]
    assert kinds.count(EventKind.NOTIFICATION) == 1


def test_samples_are_kept_per_attempt_thinned_and_forgotten_after_three_attempts(
    store: Store,
) -> None:
    monitor = store.monitor
    add(store)
    [job] = claim(store)
    rows = [(T0 + i * ONE_S, float(i), 1000 + i) for i in range(10)]
    monitor.add_samples(job.id, 1, rows)
    assert monitor.thin_samples(job.id, 1) == 4  # every other one, the first and last kept
    kept = monitor.samples(job.id, 1)
    assert [s["cpu_seconds"] for s in kept] == [0.0, 2.0, 4.0, 6.0, 8.0, 9.0]
    for attempt in (2, 3, 4):
        store.jobs.update_job(JobUpdate(job.id, frozenset(JobState), {"attempt": attempt}), T0)
        monitor.forget_old_samples(job.id, attempt)
        assert monitor.add_samples(job.id, attempt, rows[:1])
    assert {s["attempt"] for s in monitor.samples(job.id)} == {2, 3, 4}


def test_a_live_attempt_shows_its_usage_and_a_new_attempt_starts_without(store: Store) -> None:
    [job] = add(store, new_job(max_attempts=2))
    [running] = claim(store, now=T0)
    rows = [(T0 + ONE_S, 0.5, 4000)]
    store.monitor.add_samples(job.id, running.attempt, rows, (0.5, 6000))
    assert_fields(stored(store, job.id), cpu_seconds=0.5, peak_memory=6000)
    store.monitor.add_samples(job.id, running.attempt - 1, [], (9.0, 9000))  # an old attempt
    assert_fields(stored(store, job.id), cpu_seconds=0.5, peak_memory=6000)
    end = T0 + 2 * ONE_S
    failed = finished(running, RunEnd(succeeded=False, exit_code=1, cpu_seconds=0.7), end)
    assert store.jobs.update_job(failed, end)
    store.monitor.add_samples(job.id, running.attempt, [], (9.0, 9000))  # too late: it ended
    assert_fields(stored(store, job.id), state=JobState.SCHEDULED, cpu_seconds=0.7)
    later = T0 + 600 * ONE_S
    assert store.queue.promote_due(later) == [job.id]
    [again] = claim(store, now=later)
    assert_fields(again, attempt=2, cpu_seconds=None, peak_memory=None)


def test_recent_runtimes_and_breached_budgets(store: Store) -> None:
    for seconds in (1.0, 2.0, 3.0):
        [job] = add(store, new_job(type="etl"))
        [running] = claim(store, now=T0)
        end = T0 + seconds * ONE_S
        assert store.jobs.update_job(
            finished(running, RunEnd(succeeded=True, exit_code=0), end), end
        )
        assert stored(store, job.id).runtime_seconds == seconds
    assert store.monitor.recent_runtimes("etl", 2) == [3.0, 2.0]
    [job] = add(store)
    breach = SlaBreached(at=T0, budget="max_runtime", limit=1, value=2, action="notify", attempt=1)
    store.jobs.append_output(job.id, [], [breach], {})
    assert store.monitor.breached_budgets(job.id) == frozenset({"max_runtime"})


@pytest.mark.sql_only("metrics")
def test_stats_count_jobs_and_bucket_runtimes_and_waits(store: Store) -> None:
    add(store, new_job(type="etl"), new_job(type="etl"), new_job(type="mail", queue="q2"))
    for running in claim(store, limit=2, now=T0 + 2 * ONE_S):
        end = T0 + 5 * ONE_S
        store.jobs.update_job(finished(running, RunEnd(succeeded=False, exit_code=1), end), end)
    stats = store.monitor.stats(T0)
    assert stats.jobs == {("etl", JobState.FAILED.value): 2, ("mail", "queued"): 1}
    assert stats.queued == {"q2": 1}
    buckets = stats.durations["etl"].buckets
    assert (buckets[BOUNDS.index(1)], buckets[BOUNDS.index(5)]) == (0, 2)  # 3 s: above 1
    assert stats.durations["etl"].count == 2
    assert stats.waits["default"].total == 4.0  # two jobs queued at T0, claimed at T0 + 2 s


@pytest.mark.sql_only("metrics")
def test_workers_alive_are_those_within_their_own_lease(store: Store) -> None:
    """Counted against the API node's lease timeout (30 s unless set there), a worker
    with a lease of 6 s was alive for half a minute after the list said lost, and one
    with a lease of 2 minutes dropped out between two heartbeats."""
    for name, beat, lease in [("short", 10, 6.0), ("long", 60, 120.0), ("plain", 20, 30.0)]:
        at = T0 - beat * ONE_S
        store.workers.register_worker(
            WorkerInfo(name, "h", 1, "v", ["default"], 1, at, at, lease_timeout=lease)
        )
    assert store.monitor.stats(T0).workers_alive == 2  # long and plain
    with store.engine.begin() as conn:  # a row of a worker older than the lease column
        conn.execute(update(workers).where(workers.c.name == "plain").values(lease_timeout=None))
    assert store.monitor.stats(T0).workers_alive == 2  # as 30 s, not a failed scrape


@pytest.mark.sql_only("the event feed")
def test_a_jobs_newest_events_are_read_oldest_first(store: Store) -> None:
    """The job page's timeline read a job's first 200 events: one retried a hundred times
    showed neither its last attempts nor its end."""
    [job] = add(store)
    ends = [failed_event(T0 + n * ONE_S) for n in range(5)]
    store.jobs.append_output(job.id, [], ends, {})
    kinds = (EventKind.STATE.value,)
    every = store.events.feed(0, 100, kinds=kinds, job_id=job.id)
    newest = store.events.feed(0, 2, kinds=kinds, job_id=job.id, newest=True)
    assert [item.event.id for item in newest] == [item.event.id for item in every[-2:]]
    assert [item.event.record.at for item in newest] == [T0 + 3 * ONE_S, T0 + 4 * ONE_S]


@pytest.mark.sql_only("the event log's JSON")
def test_events_between_reads_only_the_state_events_asked_for(store: Store) -> None:
    after = store.events.last_event_id()  # the store is shared by this module's tests
    jobs = add(store, new_job(), new_job(), new_job())  # each with its created event
    lost = JobRescheduled(
        at=T0, state=JobState.QUEUED, reason="worker_lost", attempt=2, run_at=T0, restart_count=0
    )
    breach = SlaBreached(at=T0, budget="runtime", limit=1, value=2, action="notify", attempt=1)
    store.jobs.append_output(jobs[0].id, [], [failed_event(T0)], {})
    store.jobs.append_output(jobs[1].id, [], [JobTerminated(at=T0, state=JobState.SUCCEEDED)], {})
    store.jobs.append_output(jobs[2].id, [], [lost, breach], {})
    kinds = (EventKind.STATE.value, EventKind.SLA.value)
    upto = store.events.last_event_id()

    def read(**only: Any) -> list[tuple[int, str]]:
        items = store.monitor.events_between(after, upto, kinds, **only)
        return [(item.event.job_id, type(item.event.record).__name__) for item in items]

    assert len(read()) == 3 + 4  # every kind asked for, unfiltered
    failed = read(states=["failed"], reasons=["worker_lost"])
    assert failed == [
        (jobs[0].id, "JobTerminated"),
        (jobs[2].id, "JobRescheduled"),
        (jobs[2].id, "SlaBreached"),  # another kind: not filtered
    ]
    ends = read(states=["failed", "succeeded"])
    assert [name for _, name in ends] == ["JobTerminated", "JobTerminated", "SlaBreached"]


@pytest.mark.sql_only("the notification outbox")
def test_the_notifier_tells_a_success_when_a_rule_asks_for_it(store: Store) -> None:
    [job] = add(store)
    config = {
        "channels": {"hook": {"type": "webhook", "url": "https://hooks.example.test/x"}},
        "rules": [{"events": ["succeeded"], "channels": ["hook"]}],
    }
    wants = Notifier(store, parse_notifications(config))
    wants.position = store.events.last_event_id()
    store.jobs.append_output(job.id, [], [JobTerminated(at=T0, state=JobState.SUCCEEDED)], {})
    assert wants.run_once(T0) == 1
    [item] = [item for item in store.monitor.notifications(1, 100)[0] if item["job_id"] == job.id]
    assert (item["event"], item["channel"]) == ("succeeded", "hook")


def notifier(store: Store, gap_grace: float = 5.0) -> Notifier:
    config = parse_notifications(
        {
            "channels": {"hook": {"type": "webhook", "url": "https://hooks.example.test/x"}},
            "rules": [{"events": ["failed"], "channels": ["hook"]}],
        }
    )
    return Notifier(store, config, gap_grace=gap_grace)


def failed_event(at: datetime) -> JobTerminated:
    return JobTerminated(at=at, state=JobState.FAILED, reason="exit_code")


@pytest.mark.sql_only("the notification outbox")
def test_the_notifier_makes_each_message_once_across_restarts(store: Store) -> None:
    jobs = add(store, new_job(), new_job(), new_job(type="other"))
    store.jobs.append_output(jobs[0].id, [], [failed_event(T0)], {})
    first = notifier(store)
    assert first.run_once(T0) == 1
    assert first.run_once(T0) == 0  # nothing new
    store.jobs.append_output(jobs[1].id, [], [failed_event(T0)], {})
    succeeded = JobTerminated(at=T0, state=JobState.SUCCEEDED)
    store.jobs.append_output(jobs[2].id, [], [succeeded], {})  # no rule wants it: nothing
    again = notifier(store)  # a restart: it goes on from the stored cursor
    assert again.run_once(T0) == 1
    items, total = store.monitor.notifications(1, 10)
    assert total == 2
    assert sorted(item["job_id"] for item in items) == [jobs[0].id, jobs[1].id]
    assert {item["channel"] for item in items} == {"hook"}


@pytest.mark.sql_only("the notification outbox")
def test_a_pass_stores_a_message_and_a_recorded_problem_together(store: Store) -> None:
    routed, unrouted = add(store, new_job(), new_job())
    reader = notifier(store)  # its rule wants "failed" only
    reader.position = store.events.last_event_id()
    store.jobs.append_output(routed.id, [], [failed_event(T0)], {})
    upstream = JobTerminated(at=T0, state=JobState.UPSTREAM_FAILED, reason="upstream_failed")
    store.jobs.append_output(unrouted.id, [], [upstream], {})  # no rule: recorded
    assert reader.run_once(T0) == 2
    items = store.monitor.notifications(1, 100)[0]
    made = {item["job_id"]: (item["event"], item["status"]) for item in items}
    assert made[routed.id] == ("failed", PENDING)
    assert made[unrouted.id] == ("upstream_failed", "recorded")


@pytest.mark.sql_only("the notification outbox")
def test_a_job_removed_before_the_notifier_read_its_end_is_told_all_the_same(
    store: Store,
) -> None:
    """Its events went with it, before a pass (twice a second) read them: its failure
    made no message, not even a recorded one."""
    reader = notifier(store)  # its rule wants "failed" only
    reader.run_once(T0)  # its place stored: before the ends below
    manager = JobManager(
        store,
        Catalog(store, {}),
        before_remove=lambda job: reader.before_removal(job.id, T0),
        clock=lambda: T0,
    )
    routed, unrouted, told = add(store, new_job(), new_job(), new_job())
    upstream = JobTerminated(at=T0, state=JobState.UPSTREAM_FAILED, reason="upstream_failed")
    for job, end in [(routed, failed_event(T0)), (unrouted, upstream), (told, failed_event(T0))]:
        ended = JobUpdate(job.id, frozenset(JobState), {"state": end.state}, end)
        assert store.jobs.update_job(ended, T0) is not None
    assert reader.before_removal(told.id, T0) == 1  # as if a pass had made it
    for job in (routed, unrouted, told):
        manager.remove(job.id)
        assert store.jobs.get_job(job.id) is None
    assert reader.run_once(T0) == 0  # nothing of theirs is left to read
    items = store.monitor.notifications(1, 100)[0]
    made = sorted((item["job_id"], item["event"], item["status"]) for item in items)
    assert made == [
        (routed.id, "failed", PENDING),
        (unrouted.id, "upstream_failed", "recorded"),
        (told.id, "failed", PENDING),  # once
    ]


@pytest.mark.sql_only("the notification outbox")
def test_the_notifier_waits_for_an_id_that_commits_late_then_steps_over_a_lost_one(
    store: Store,
) -> None:
    [job] = add(store)
    reader = notifier(store, gap_grace=0.5)
    reader.run_once(T0)
    start = reader.position
    assert start is not None
    with store.engine.begin() as conn:  # an id taken by a transaction that rolls back
        conn.execute(insert(job_events), [event_row(job.id, failed_event(T0))])
        conn.rollback()
    store.jobs.append_output(job.id, [], [failed_event(T0)], {})
    if store.dialect != "sqlite":  # SQLite reuses a rolled-back id: there is no gap
        assert reader.run_once(T0) == 0  # the missing id may still commit: wait
    made = wait_until(lambda: reader.run_once(T0), 10)
    assert made == 1  # after the grace, it steps over the gap


@pytest.mark.sql_only("the notification outbox")
def test_an_idle_notifier_stores_its_place_so_retention_can_go_on(store: Store) -> None:
    [job] = add(store)
    reader = notifier(store)
    reader.run_once(T0)  # stores its place: the cursor was due
    succeeded = JobTerminated(at=T0, state=JobState.SUCCEEDED)
    store.jobs.append_output(job.id, [], [succeeded], {})  # makes no message
    reader.run_once(T0)  # read, but the cursor is not due again yet
    newest = store.events.last_event_id()
    assert store.monitor.cursor("notifier") != newest
    reader.run_once(T0 + timedelta(minutes=1))  # nothing new, and the cursor is due
    assert store.monitor.cursor("notifier") == newest
