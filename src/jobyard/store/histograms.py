"""The run time and dispatch latency histograms of ``/metrics``, as pure data.

They count the jobs that ended (succeeded, failed or killed: states a job never
leaves), each by its last attempt's value, so that a count never goes down while
a job is retried. The jobs still stored are counted at each scrape; a job that
is removed (by hand or by retention) leaves its part in running totals that the
store keeps in the transaction that removes it, so that no series goes down.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from jobyard.states import JobState

# seconds: from sub-second Python jobs to day-long batch runs
BOUNDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400)
ENDED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.KILLED})


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts per upper bound of :data:`BOUNDS` (``buckets`` in their order)."""

    buckets: tuple[int, ...]
    count: int
    total: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Histogram:
        found = list(values)
        buckets = tuple(sum(value <= bound for value in found) for bound in BOUNDS)
        return cls(buckets, len(found), float(sum(found)))

    def plus(self, other: Histogram) -> Histogram:
        buckets = tuple(a + b for a, b in zip(self.buckets, other.buckets, strict=True))
        return Histogram(buckets, self.count + other.count, self.total + other.total)


@dataclass(frozen=True)
class JobHistograms:
    durations: dict[str, Histogram]  # type → run time of the last attempt of ended jobs
    waits: dict[str, Histogram]  # queue → ready until claimed, of the same jobs

    def plus(self, other: JobHistograms) -> JobHistograms:
        return JobHistograms(
            merged(self.durations, other.durations), merged(self.waits, other.waits)
        )


@dataclass(frozen=True)
class Counted:
    """What a job adds to the histograms: its labels, state and values."""

    type: str
    queue: str
    state: str
    runtime_seconds: float | None
    wait_seconds: float | None


def of_jobs(jobs: Iterable[Counted]) -> JobHistograms:
    """The histograms of ``jobs``: those that ended, by their values that are set."""
    durations: dict[str, list[float]] = {}
    waits: dict[str, list[float]] = {}
    for job in jobs:
        if JobState(job.state) not in ENDED:
            continue
        if job.runtime_seconds is not None:
            durations.setdefault(job.type, []).append(job.runtime_seconds)
        if job.wait_seconds is not None:
            waits.setdefault(job.queue, []).append(job.wait_seconds)
    return JobHistograms(
        {key: Histogram.of(values) for key, values in durations.items()},
        {key: Histogram.of(values) for key, values in waits.items()},
    )


def merged(*found: Mapping[str, Histogram]) -> dict[str, Histogram]:
    """Histograms of the same label summed."""
    total: dict[str, Histogram] = {}
    for histograms in found:
        for key, histogram in histograms.items():
            total[key] = total[key].plus(histogram) if key in total else histogram
    return total
