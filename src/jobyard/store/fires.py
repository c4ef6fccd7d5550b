"""Queries of schedule fires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, FromClause, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from jobyard.store.tables import schedule_fires as fires


@dataclass(frozen=True)
class Fire:
    schedule: str
    fire_time: datetime
    fired_at: datetime
    job_id: int | None
    run_id: int | None


def claim(
    conn: Connection, schedule: str, fire_time: datetime, now: datetime, job_id: int | None = None
) -> bool:
    """Insert the fire (with the job it made); False when another scheduler already fired
    this time."""
    try:
        with conn.begin_nested():
            row = {"schedule": schedule, "fire_time": fire_time, "fired_at": now, "job_id": job_id}
            conn.execute(insert(fires), [row])
    except IntegrityError:
        return False
    return True


def set_target(
    conn: Connection, schedule: str, fire_time: datetime, job_id: int | None, run_id: int | None
) -> None:
    conn.execute(
        update(fires)
        .where(fires.c.schedule == schedule, fires.c.fire_time == fire_time)
        .values(job_id=job_id, run_id=run_id)
    )


def last(conn: Connection, schedule: str, *, started: bool = False) -> Fire | None:
    """The schedule's newest fire; with ``started``, the newest that created a job or run
    (a skipped fire creates nothing, and must not hide the run it was skipped for)."""
    query = select(fires).where(fires.c.schedule == schedule)
    if started:
        query = query.where(started_something(fires))
    row = conn.execute(query.order_by(fires.c.fire_time.desc()).limit(1)).mappings().first()
    return None if row is None else Fire(**row)


def started_something(table: FromClause) -> ColumnElement[bool]:
    """Whether a row of ``schedule_fires`` (or an alias of it) created a job or a run."""
    return or_(table.c.job_id.is_not(None), table.c.run_id.is_not(None))


def forget(conn: Connection, schedule: str) -> None:
    """Delete every fire of ``schedule``: a schedule deleted, or made anew under its name,
    whose history the new one must not inherit (its last fire, the run it overlaps)."""
    conn.execute(delete(fires).where(fires.c.schedule == schedule))
