"""Aggregates for ``/metrics``: counts and histogram buckets computed by the database.

The histograms are cumulative bucket counts over every job that has a value
(``runtime_seconds`` once an attempt ended, ``wait_seconds`` once it was
claimed), so they hold for the whole cluster whichever process is scraped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Column, Connection, case, func, select

from jobyard.store import notes
from jobyard.store.rows import worker_from_row
from jobyard.store.tables import jobs, workers


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts per upper bound (``buckets`` in the order of the bounds)."""

    buckets: list[int]
    count: int
    total: float


@dataclass(frozen=True)
class Stats:
    jobs: dict[tuple[str, str], int]  # (type, state) → count
    queued: dict[str, int]  # queue → jobs ready to run
    durations: dict[str, Histogram]  # type → runtime of ended attempts
    waits: dict[str, Histogram]  # queue → ready until claimed
    workers_alive: int
    notifications: dict[tuple[str, str, str], int] = field(default_factory=dict)
    sla_breaches: int = 0


def collect(conn: Connection, bounds: Sequence[float], now: datetime) -> Stats:
    by_type = select(jobs.c.type, jobs.c.state, func.count()).group_by(jobs.c.type, jobs.c.state)
    queued = (
        select(jobs.c.queue, func.count()).where(jobs.c.state == "queued").group_by(jobs.c.queue)
    )
    return Stats(
        jobs={(t, s): int(n) for t, s, n in conn.execute(by_type)},
        queued={q: int(n) for q, n in conn.execute(queued)},
        durations=_histograms(conn, jobs.c.type, jobs.c.runtime_seconds, bounds),
        waits=_histograms(conn, jobs.c.queue, jobs.c.wait_seconds, bounds),
        # Alive as the workers' list says: not lost (within the worker's own lease).
        workers_alive=sum(
            not worker_from_row(row).lost(now) for row in conn.execute(select(workers)).mappings()
        ),
        notifications=notes.counts(conn),
        sla_breaches=notes.breaches(conn),
    )


def _histograms(
    conn: Connection, label: Column[str], value: Column[float], bounds: Sequence[float]
) -> dict[str, Histogram]:
    columns = [func.sum(case((value <= bound, 1), else_=0)) for bound in bounds]
    query = (
        select(label, func.count(), func.coalesce(func.sum(value), 0.0), *columns)
        .where(value.is_not(None))
        .group_by(label)
    )
    return {
        row[0]: Histogram([int(n or 0) for n in row[3:]], int(row[1]), float(row[2]))
        for row in conn.execute(query)
    }
