"""Resource samples and SLA history of running jobs, in memory."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from jobyard.events.records import SlaBreached
from jobyard.states import LIVE, JobState
from jobyard.store.histograms import JobHistograms, of_jobs
from jobyard.store.memory.tables import Part, counted


class MemorySamples(Part):
    """:class:`~jobyard.store.protocol.SampleStore` in memory (the rest of monitoring is SQL)."""

    KEEP_ATTEMPTS = 3

    def add_samples(
        self,
        job_id: int,
        attempt: int,
        rows: Sequence[tuple[datetime, float, int]],
        usage: tuple[float, int] | None = None,
    ) -> bool:
        with self._t.lock:
            job = self._t.jobs.get(job_id)
            if job is None or job.attempt != attempt:
                return False
            if rows:
                self._t.samples.setdefault((job_id, attempt), []).extend(rows)
            if usage is not None and job.state in LIVE:
                cpu, peak = usage
                self._t.set(job_id, {"cpu_seconds": cpu, "peak_memory": peak or None})
            return True

    def job_histograms(self) -> JobHistograms:
        with self._t.lock:
            stored = of_jobs(counted(job) for job in self._t.jobs.values())
            return stored.plus(self._t.removed)

    def thin_samples(self, job_id: int, attempt: int) -> int:
        with self._t.lock:
            rows = self._t.samples.get((job_id, attempt), [])
            doomed = set(range(1, len(rows) - 1, 2))
            self._t.samples[(job_id, attempt)] = [r for i, r in enumerate(rows) if i not in doomed]
            return len(doomed)

    def forget_old_samples(self, job_id: int, attempt: int) -> None:
        with self._t.lock:
            for key in [k for k in self._t.samples if k[0] == job_id]:
                if key[1] <= attempt - self.KEEP_ATTEMPTS:
                    del self._t.samples[key]

    def samples(self, job_id: int, attempt: int | None = None) -> list[dict[str, Any]]:
        """A job's samples in time order, of one attempt or of every kept attempt."""
        with self._t.lock:
            kept = sorted((a, rows) for (j, a), rows in self._t.samples.items() if j == job_id)
        return [
            {"attempt": a, "at": at, "cpu_seconds": cpu, "rss": rss}
            for a, rows in kept
            if attempt in (None, a)
            for at, cpu, rss in rows
        ]

    def recent_runtimes(self, job_type: str, limit: int) -> list[float]:
        with self._t.lock:
            done = self._t.where(
                lambda job: (
                    job.type == job_type
                    and job.state is JobState.SUCCEEDED
                    and job.runtime_seconds is not None
                )
            )
        done.sort(key=lambda job: job.finished_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        return [float(job.runtime_seconds or 0.0) for job in done[:limit]]

    def breached_budgets(self, job_id: int) -> frozenset[str]:
        with self._t.lock:
            events = self._t.events.get(job_id, [])
            return frozenset(e.record.budget for e in events if isinstance(e.record, SlaBreached))
