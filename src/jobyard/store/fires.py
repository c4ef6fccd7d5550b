"""Queries of schedule fires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from jobyard.store.tables import schedule_fires as fires


@dataclass(frozen=True)
class Fire:
    schedule: str
    fire_time: datetime
    fired_at: datetime
    job_id: int | None
    run_id: int | None


def claim(conn: Connection, schedule: str, fire_time: datetime, now: datetime) -> bool:
    """Insert the fire; False when another scheduler already fired this time."""
    try:
        with conn.begin_nested():
            row = {"schedule": schedule, "fire_time": fire_time, "fired_at": now}
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


def last(conn: Connection, schedule: str) -> Fire | None:
    row = (
        conn.execute(
            select(fires)
            .where(fires.c.schedule == schedule)
            .order_by(fires.c.fire_time.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return None if row is None else Fire(**row)
