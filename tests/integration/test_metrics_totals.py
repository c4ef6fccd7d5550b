"""No ``/metrics`` counter goes down when rows are removed: a job removed by hand or by
retention, or a notification pruned, stays counted (on the memory store and every backend)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobyard import metrics
from jobyard.outcomes import RunEnd, finished
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.histograms import BOUNDS, JobHistograms
from jobyard.store.notes import FAILED, PENDING, RECORDED, SENT
from jobyard.store.protocol import Storage
from tests.stores import T0, add, claim, in_threads, message, new_job

ONE_S = timedelta(seconds=1)
LATER = T0 + timedelta(days=30)


def ended(store: Storage, seconds: float, *, job_type: str = "etl", ok: bool = True) -> int:
    """A job of ``job_type`` claimed 2 s after it was queued, that ran ``seconds``."""
    [job] = add(store, new_job(type=job_type, max_attempts=1))
    [running] = claim(store, limit=1, now=T0 + 2 * ONE_S)
    end = T0 + (2 + seconds) * ONE_S
    outcome = RunEnd(succeeded=ok, exit_code=0 if ok else 1)
    assert store.jobs.update_job(finished(running, outcome, end), end)
    return job.id


def test_a_removed_or_pruned_job_stays_in_the_histograms(store: Storage) -> None:
    first, _, _ = ended(store, 0.5), ended(store, 3.0), ended(store, 20.0, ok=False)
    found = store.monitor.job_histograms()
    assert found.durations["etl"].count == 3
    assert found.durations["etl"].buckets[BOUNDS.index(1)] == 1
    assert found.durations["etl"].total == 23.5
    assert found.waits["default"].count == 3
    assert store.jobs.delete_job(first, frozenset(JobState))
    assert store.monitor.job_histograms() == found
    while store.retention.prune_jobs(LATER, 1, LATER).more:
        pass
    assert store.monitor.job_histograms() == found
    ended(store, 0.5)
    after = store.monitor.job_histograms()
    assert after.durations["etl"].count == 4
    assert after.durations["etl"].total == 24.0


def test_only_jobs_that_ended_count_so_a_retry_moves_no_bucket(store: Storage) -> None:
    """A retried job's last attempt replaces the run time and wait of the one before:
    counted while it could still run again, its buckets would go down."""
    [job] = add(store, new_job(max_attempts=2))
    [running] = claim(store, now=T0 + 2 * ONE_S)
    end = T0 + 3 * ONE_S
    retry = finished(running, RunEnd(succeeded=False, exit_code=1), end)
    assert store.jobs.update_job(retry, end).state is JobState.SCHEDULED  # type: ignore[union-attr]
    assert store.monitor.job_histograms() == JobHistograms({}, {})
    # Removing a job that has not ended takes nothing away either.
    assert store.jobs.delete_job(job.id, frozenset(JobState))
    assert store.monitor.job_histograms() == JobHistograms({}, {})


def breach(source: int, channel: str | None, status: str) -> dict[str, object]:
    return message(source, channel or "x", event="sla_breach", status=status) | {"channel": channel}


def notifications() -> list[dict[str, object]]:
    return [
        breach(1, "mail", SENT),
        breach(1, "hook", FAILED),
        breach(2, None, RECORDED),
        message(3, "mail", status=SENT),
        message(3, "hook", status=SENT),
        message(4, "hook", status=PENDING),
    ]


@pytest.mark.sql_only("notifications")
def test_pruned_notifications_stay_counted_one_batch_at_a_time(store: Store) -> None:
    store.monitor.add_notifications(notifications(), None, T0)
    counts, breaches = store.monitor.notification_counts(), store.monitor.sla_breaches()
    assert breaches == 2
    assert counts[("failed", "mail", SENT)] == 1
    told = {key: n for key, n in counts.items() if key[2] in (SENT, FAILED)}
    while store.retention.prune_notifications(LATER, 1, LATER).rows:
        # a batch takes one message of a breach, or its last one
        now = store.monitor.notification_counts()
        assert {key: n for key, n in now.items() if key[2] in (SENT, FAILED)} == told
        assert store.monitor.sla_breaches() == 2
    stats = store.monitor.stats(LATER)
    assert stats.notifications[("sla_breach", "hook", FAILED)] == 1
    assert stats.notifications[("failed", "mail", SENT)] == 1
    assert stats.notifications[("failed", "hook", PENDING)] == 1
    assert stats.sla_breaches == 2


@pytest.mark.sql_only("notifications")
def test_concurrent_prunes_count_each_breach_once(store: Store) -> None:
    rows = [breach(n, channel, SENT) for n in range(1, 21) for channel in ("a", "b", "c")]
    store.monitor.add_notifications(rows, None, T0)
    url = store.engine.url.render_as_string(hide_password=False)
    others = [Store(url) for _ in range(3)]
    try:

        def prune(i: int) -> None:
            while others[i].retention.prune_notifications(LATER, 2, LATER).rows:
                pass

        in_threads(3, prune)
    finally:
        for other in others:
            other.close()
    assert store.monitor.notifications(1, 10)[1] == 0
    assert store.monitor.sla_breaches() == 20
    assert store.monitor.notification_counts()[("sla_breach", "b", SENT)] == 20


def scrape(store: Store, **labels: str) -> dict[str, float]:
    """The cluster's series of a fresh collector, by name and labels."""
    found = metrics.registry(store, queues=["default"], channels=["mail", "hook"])
    text = metrics.render(found).decode()
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


@pytest.mark.sql_only("/metrics")
def test_no_series_of_metrics_goes_down_when_jobs_and_notifications_go(store: Store) -> None:
    before = scrape(store)
    assert before["jobyard_notifications_pending[('channel', 'hook')]"] == 0  # told at 0
    assert before["jobyard_notifications_pending[('channel', 'mail')]"] == 0
    ids = [ended(store, s) for s in (0.2, 4.0)] + [ended(store, 8.0, job_type="mail")]
    store.monitor.add_notifications(notifications(), None, T0)
    full = scrape(store)
    assert full["jobyard_notifications_pending[('channel', 'hook')]"] == 1
    assert store.jobs.delete_job(ids[0], frozenset(JobState))
    removed = scrape(store)
    while store.retention.prune_jobs(LATER, 1, LATER).more:
        pass
    while store.retention.prune_notifications(LATER, 1, LATER).rows:
        pass
    pruned = scrape(store)
    for name, value in full.items():
        if name.startswith(
            (
                "jobyard_job_duration",
                "jobyard_dispatch",
                "jobyard_sla",
                "jobyard_notifications_sent",
                "jobyard_notifications_failed",
            )
        ):
            assert removed[name] == value, name
            assert pruned[name] == value, name
    assert pruned["jobyard_job_duration_seconds_count[('type', 'etl')]"] == 2
    assert pruned["jobyard_sla_breaches_total[]"] == 2
