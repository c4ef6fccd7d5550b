"""``jobyard_queue_depth`` tells every configured queue, at 0 too: a series that vanished
when its queue emptied made ``absent()`` alerts fire and graphs break."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from jobyard import metrics
from jobyard.models import JobSpec, NewJob
from jobyard.states import JobState
from jobyard.store import Store

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _depths(store: Store, queues: list[str]) -> dict[str, float]:
    scraped = metrics.render(metrics.registry(store, queues=queues))
    [family] = [
        family
        for family in text_string_to_metric_families(scraped.decode())
        if family.name == "jobyard_queue_depth"
    ]
    return {sample.labels["queue"]: sample.value for sample in family.samples}


def test_configured_queues_are_told_at_zero_beside_those_that_hold_jobs(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:
        store.migrate()
        assert _depths(store, ["default", "gpu"]) == {"default": 0, "gpu": 0}
        spec = JobSpec(argv=["true"])
        new = [NewJob("t", {}, spec, queue, 0, JobState.QUEUED) for queue in ("gpu", "other")]
        store.jobs.add_jobs(new, NOW)
        assert _depths(store, ["default", "gpu"]) == {"default": 0, "gpu": 1, "other": 1}
    finally:
        store.close()
