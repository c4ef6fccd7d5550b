"""Running totals of what removed rows had counted in ``/metrics``.

A series read over the rows still stored goes down when rows go: Prometheus takes
that for a counter reset. So whatever removes jobs or notifications adds their
part here in its own transaction (``value = value + part``: removals on several
nodes at once each add theirs), and a scrape reads the rows and the totals of a
series in one statement, a snapshot in which a removal is either whole or not
yet made.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Double, Select, case, cast, func, select, union_all
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from jobyard.store.coltypes import MYSQL
from jobyard.store.histograms import BOUNDS, Counted, Histogram, of_jobs
from jobyard.store.tables import jobs, metric_totals

DURATIONS, WAITS = "job_duration_seconds", "dispatch_latency_seconds"
NOTIFICATIONS, BREACHES = "notifications", "sla_breaches"
COUNT, SUM = "count", "sum"
#: The columns of a removed job (``DELETE … RETURNING``) that its part needs.
COUNTED = (jobs.c.type, jobs.c.queue, jobs.c.state, jobs.c.runtime_seconds, jobs.c.wait_seconds)

Row = dict[str, Any]


def row(metric: str, label: str = "", event: str = "", bucket: str = "", *, value: float) -> Row:
    return {"metric": metric, "label": label, "event": event, "bucket": bucket, "value": value}


def add(conn: Connection, rows: Iterable[Row]) -> None:
    """Add each row's ``value`` to its total. In key order: two removals adding to the
    same totals wait for each other rather than deadlock."""
    found = sorted((r for r in rows if r["value"]), key=_key)
    if found:
        conn.execute(_upsert(conn.dialect.name), found)


def lock(conn: Connection, metric: str) -> None:
    """Hold ``metric``'s (label-less) total until the transaction ends: removals that
    must see each other's deletions go one after the other."""
    conn.execute(_upsert(conn.dialect.name), [row(metric, value=0.0)])


def add_removed_jobs(conn: Connection, removed: Iterable[Any]) -> None:
    """Add the part of removed ``jobs`` rows (their :data:`COUNTED` columns)."""
    found = of_jobs(Counted(*values) for values in removed)
    add(conn, _histogram_rows(DURATIONS, found.durations) + _histogram_rows(WAITS, found.waits))


def histograms(conn: Connection, stored: Select[Any], metric: str) -> dict[str, Histogram]:
    """The histograms of ``stored`` (label, count, sum, each bound's count, as
    :func:`histogram_columns` makes them) plus ``metric``'s totals, read in one statement."""
    found: dict[str, list[float]] = {}
    for label, *values in conn.execute(union_all(stored, _histogram_totals(metric))):
        sums = found.setdefault(label, [0.0] * len(values))
        for i, value in enumerate(values):
            sums[i] += float(value or 0)
    return {
        label: Histogram(tuple(round(n) for n in values[2:]), round(values[0]), values[1])
        for label, values in found.items()
    }


def histogram_columns(value: Any) -> list[Any]:
    """Count, sum and each bound's count of ``value`` (rows where it is set)."""
    return [
        cast(func.count(value), Double),
        cast(func.coalesce(func.sum(value), 0.0), Double),
        *(cast(func.sum(case((value <= bound, 1), else_=0)), Double) for bound in BOUNDS),
    ]


def with_totals(stored: Select[Any], metric: str, *labels: str) -> Select[Any]:
    """``stored`` (its labels, then a count) and ``metric``'s totals as more rows of that
    shape (columns ``labels`` of the totals), to be read in one statement and summed."""
    c = metric_totals.c
    total = select(*(c[name] for name in labels), cast(c.value, Double))
    return union_all(stored, total.where(c.metric == metric)).subquery().select()


def _histogram_rows(metric: str, found: dict[str, Histogram]) -> list[Row]:
    rows = []
    for label, histogram in found.items():
        rows.append(row(metric, label, bucket=COUNT, value=histogram.count))
        rows.append(row(metric, label, bucket=SUM, value=histogram.total))
        for bound, n in zip(BOUNDS, histogram.buckets, strict=True):
            rows.append(row(metric, label, bucket=_bucket(bound), value=n))
    return rows


def _histogram_totals(metric: str) -> Select[Any]:
    """``metric``'s totals in the columns of :func:`histogram_columns` (a bound no longer
    in :data:`BOUNDS` is left out)."""
    c = metric_totals.c

    def part(bucket: str) -> Any:
        return cast(func.sum(case((c.bucket == bucket, c.value), else_=0.0)), Double)

    columns = [part(COUNT), part(SUM), *(part(_bucket(b)) for b in BOUNDS)]
    return select(c.label, *columns).where(c.metric == metric).group_by(c.label)


def _bucket(bound: float) -> str:
    return f"{float(bound):g}"


def _key(r: Row) -> tuple[str, ...]:
    return (r["metric"], r["label"], r["event"], r["bucket"])


def _upsert(dialect: str) -> Insert:
    if dialect in MYSQL:
        mine = mysql.insert(metric_totals)
        upsert: Insert = mine.on_duplicate_key_update(
            value=metric_totals.c.value + mine.inserted.value
        )
        return upsert
    other = (postgresql if dialect == "postgresql" else sqlite).insert(metric_totals)
    c = metric_totals.c
    upsert = other.on_conflict_do_update(
        index_elements=[c.metric, c.label, c.event, c.bucket],
        set_={"value": c.value + other.excluded.value},
    )
    return upsert
