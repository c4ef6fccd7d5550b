"""Prometheus metrics of the whole deployment, read from the database at scrape time.

Every number comes from the shared database, so any API node answers for the
cluster: jobs by state and type, ready jobs per queue, run time and dispatch
latency histograms, live workers, notifications and SLA breaches. A scrape
runs a handful of aggregate queries; results are reused for ``cache_for``
seconds so that several scrapers cost the database no more than one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from jobyard.clock import utcnow
from jobyard.store import Store
from jobyard.store.histograms import BOUNDS, Histogram
from jobyard.store.stats import Stats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ClusterCollector(Collector):
    def __init__(
        self,
        store: Store,
        *,
        queues: Iterable[str] = (),
        channels: Iterable[str] = (),
        cache_for: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.queues = frozenset(queues)  # told at 0 when empty: a series does not vanish
        self.channels = frozenset(channels)  # their pending messages too
        self.cache_for = cache_for
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, Stats] | None = None

    def stats(self) -> Stats:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < self.cache_for:
                return self._cached[1]
            # Alive as the workers' list says: a heartbeat within the worker's own lease.
            found = self.store.monitor.stats(self._clock())
            self._cached = (time.monotonic(), found)
            return found

    def collect(self) -> Iterator[Metric]:
        stats = self.stats()
        jobs = GaugeMetricFamily("jobyard_jobs", "Jobs by state and type", labels=["state", "type"])
        for (job_type, state), count in sorted(stats.jobs.items()):
            jobs.add_metric([state, job_type], count)
        yield jobs
        depth = GaugeMetricFamily(
            "jobyard_queue_depth", "Jobs ready to run, waiting for a worker", labels=["queue"]
        )
        for queue in sorted(self.queues | stats.queued.keys()):
            depth.add_metric([queue], stats.queued.get(queue, 0))
        yield depth
        yield _histogram(
            "jobyard_job_duration_seconds",
            "Run time of the last attempt of jobs that ended (paused time apart)",
            "type",
            stats.durations,
        )
        yield _histogram(
            "jobyard_dispatch_latency_seconds",
            "From ready (queued or due) to claimed, of the last attempt of jobs that ended",
            "queue",
            stats.waits,
        )
        yield GaugeMetricFamily(
            "jobyard_workers_alive", "Workers with a recent heartbeat", value=stats.workers_alive
        )
        yield from _notifications(stats, self.channels)
        yield CounterMetricFamily(
            "jobyard_sla_breaches", "Budgets exceeded (SLA breaches)", value=stats.sla_breaches
        )


def _histogram(name: str, text: str, label: str, found: dict[str, Histogram]) -> Metric:
    family = HistogramMetricFamily(name, text, labels=[label])
    for key, histogram in sorted(found.items()):
        buckets = [(_bound(b), float(n)) for b, n in zip(BOUNDS, histogram.buckets, strict=True)]
        buckets.append(("+Inf", float(histogram.count)))
        family.add_metric([key], buckets, histogram.total)
    return family


def _bound(value: float) -> str:
    return f"{float(value):g}"


def _notifications(stats: Stats, channels: frozenset[str]) -> Iterator[Metric]:
    sent = CounterMetricFamily(
        "jobyard_notifications_sent", "Notifications delivered", labels=["channel", "event"]
    )
    failed = CounterMetricFamily(
        "jobyard_notifications_failed",
        "Notifications given up after their last try",
        labels=["channel", "event"],
    )
    pending = GaugeMetricFamily(
        "jobyard_notifications_pending", "Notifications waiting for a try", labels=["channel"]
    )
    waiting = dict.fromkeys(channels, 0)
    for (event, channel, status), count in sorted(stats.notifications.items()):
        if status == "sent":
            sent.add_metric([channel, event], count)
        elif status == "failed":
            failed.add_metric([channel, event], count)
        elif status == "pending":
            waiting[channel] = waiting.get(channel, 0) + count
    for channel, count in sorted(waiting.items()):
        pending.add_metric([channel], count)
    yield sent
    yield failed
    yield pending


class ShedCollector(Collector):
    """Requests this process refused to stay within its limits (process-local)."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        shed = CounterMetricFamily(
            "jobyard_requests_shed",
            "Requests this process answered 503 because it was at its limit",
            labels=["kind"],
        )
        for kind, count in sorted(self.counts().items()):
            shed.add_metric([kind], count)
        yield shed


def registry(
    store: Store, *, queues: Iterable[str] = (), channels: Iterable[str] = ()
) -> CollectorRegistry:
    """A registry holding the cluster collector (the node adds its process-local ones);
    ``queues`` and ``channels`` are the configured ones, whose depth and pending
    messages are told even at 0."""
    found = CollectorRegistry(auto_describe=False)
    found.register(ClusterCollector(store, queues=queues, channels=channels))
    return found


def render(found: CollectorRegistry) -> bytes:
    return generate_latest(found)


class LeadCollector(Collector):
    """Whether this process leads the scheduler and its passes go through
    (process-local: sum it over the nodes, and alert when the sum is 0: no schedule
    fires and no notification goes out)."""

    def __init__(self, leading: Callable[[], bool]) -> None:
        self.leading = leading

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "jobyard_scheduler_leading",
            "1 while this process leads the scheduler (fires schedules, sends notifications)",
            value=1 if self.leading() else 0,
        )
