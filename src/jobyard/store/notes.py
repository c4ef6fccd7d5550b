"""Queries of notification records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from jobyard.store.rows import load_json
from jobyard.store.tables import notifications


def add(
    conn: Connection,
    event: str,
    data: dict[str, Any],
    now: datetime,
    *,
    job_id: int | None = None,
    run_id: int | None = None,
) -> int:
    row = {
        "event": event,
        "job_id": job_id,
        "run_id": run_id,
        "status": "recorded",
        "data": data,
        "created_at": now,
    }
    return int(
        conn.execute(insert(notifications).returning(notifications.c.id), [row]).scalar_one()
    )


def page(conn: Connection, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
    total = conn.execute(select(func.count()).select_from(notifications)).scalar_one()
    query = (
        select(notifications)
        .order_by(notifications.c.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    items = [
        {**row, "data": load_json(row["data"]) or {}} for row in conn.execute(query).mappings()
    ]
    return items, int(total)
