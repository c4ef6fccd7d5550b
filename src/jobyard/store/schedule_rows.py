"""Queries of stored schedules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from jobyard.store.rows import load_json
from jobyard.store.tables import schedules


@dataclass(frozen=True)
class ScheduleRow:
    name: str
    definition: dict[str, Any] | None  # None: a schedule of the configuration file
    paused: bool
    created_at: datetime
    updated_at: datetime


def all_rows(conn: Connection) -> dict[str, ScheduleRow]:
    rows = conn.execute(select(schedules).order_by(schedules.c.name)).mappings()
    return {
        row["name"]: ScheduleRow(
            row["name"],
            load_json(row["definition"]),
            bool(row["paused"]),
            row["created_at"],
            row["updated_at"],
        )
        for row in rows
    }


def create(conn: Connection, name: str, definition: dict[str, Any], now: datetime) -> bool:
    """Insert a stored schedule; False when the name is taken."""
    row = {"name": name, "definition": definition, "paused": False}
    try:
        with conn.begin_nested():
            conn.execute(insert(schedules), [row | {"created_at": now, "updated_at": now}])
    except IntegrityError:
        return False
    return True


def set_paused(conn: Connection, name: str, paused: bool, now: datetime) -> None:
    changed = conn.execute(
        update(schedules).where(schedules.c.name == name).values(paused=paused, updated_at=now)
    ).rowcount
    if not changed:  # a schedule of the file, paused for the first time
        row = {"name": name, "definition": None, "paused": paused}
        conn.execute(insert(schedules), [row | {"created_at": now, "updated_at": now}])


def remove(conn: Connection, name: str) -> bool:
    return bool(conn.execute(delete(schedules).where(schedules.c.name == name)).rowcount)
