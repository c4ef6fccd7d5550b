"""Aggregates for ``/metrics``: counts and histogram buckets computed by the database.

The histograms count the jobs that ended (:mod:`jobyard.store.histograms`), the
notification counters the messages sent and failed, the SLA breaches their
events: over the rows still stored plus what removed rows had counted
(:mod:`jobyard.store.totals`), so that they hold for the whole cluster whichever
process is scraped, and never go down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Column, Connection, func, select

from jobyard.store import notes, totals
from jobyard.store.histograms import ENDED, Histogram, JobHistograms
from jobyard.store.rows import worker_from_row
from jobyard.store.tables import jobs, workers

_ENDED = sorted(state.value for state in ENDED)


@dataclass(frozen=True)
class Stats:
    jobs: dict[tuple[str, str], int]  # (type, state) → count
    queued: dict[str, int]  # queue → jobs ready to run
    durations: dict[str, Histogram]  # type → run time of the last attempt of ended jobs
    waits: dict[str, Histogram]  # queue → ready until claimed, of the same jobs
    workers_alive: int
    notifications: dict[tuple[str, str, str], int] = field(default_factory=dict)
    sla_breaches: int = 0


def collect(conn: Connection, now: datetime) -> Stats:
    by_type = select(jobs.c.type, jobs.c.state, func.count()).group_by(jobs.c.type, jobs.c.state)
    queued = (
        select(jobs.c.queue, func.count()).where(jobs.c.state == "queued").group_by(jobs.c.queue)
    )
    found = job_histograms(conn)
    return Stats(
        jobs={(t, s): int(n) for t, s, n in conn.execute(by_type)},
        queued={q: int(n) for q, n in conn.execute(queued)},
        durations=found.durations,
        waits=found.waits,
        # Alive as the workers' list says: not lost (within the worker's own lease).
        workers_alive=sum(
            not worker_from_row(row).lost(now) for row in conn.execute(select(workers)).mappings()
        ),
        notifications=notes.counts(conn),
        sla_breaches=notes.breaches(conn),
    )


def job_histograms(conn: Connection) -> JobHistograms:
    """Run times by type and dispatch latencies by queue, of the jobs that ended."""
    return JobHistograms(
        _histograms(conn, jobs.c.type, jobs.c.runtime_seconds, totals.DURATIONS),
        _histograms(conn, jobs.c.queue, jobs.c.wait_seconds, totals.WAITS),
    )


def _histograms(
    conn: Connection, label: Column[str], value: Column[float], metric: str
) -> dict[str, Histogram]:
    stored = (
        select(label, *totals.histogram_columns(value))
        .where(value.is_not(None), jobs.c.state.in_(_ENDED))
        .group_by(label)
    )
    return totals.histograms(conn, stored, metric)
