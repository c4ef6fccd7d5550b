"""Worker rows: what each worker runs, drain requests and the worker's own state."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Connection, select, text, update

from jobyard.states import LIVE
from jobyard.store.tables import jobs, workers

_LIVE = [state.value for state in LIVE]


def jobs_by_worker(conn: Connection, names: Collection[str] | None) -> dict[str, list[int]]:
    """The live (running or paused) jobs of each worker, by id."""
    query = (
        select(jobs.c.worker, jobs.c.id)
        .where(jobs.c.state.in_(_LIVE), jobs.c.worker.is_not(None))
        .order_by(jobs.c.id)
    )
    if names is not None:
        query = query.where(jobs.c.worker.in_(list(names)))
    found: dict[str, list[int]] = {}
    for worker, job_id in conn.execute(query):
        found.setdefault(worker, []).append(job_id)
    return found


def request_drain(conn: Connection, name: str, timeout: float | None, now: datetime) -> bool:
    """Record a drain request on the worker's row; False when there is no such worker."""
    values = {"drain_requested_at": now, "drain_timeout": timeout}
    changed = conn.execute(update(workers).where(workers.c.name == name).values(values)).rowcount
    if changed and conn.dialect.name == "postgresql":
        # Workers LISTEN on this channel: the request is seen now, not at the next heartbeat.
        conn.execute(text("SELECT pg_notify('jobyard_jobs', 'drain')"))
    return bool(changed)


def set_state(conn: Connection, name: str, state: str) -> None:
    conn.execute(update(workers).where(workers.c.name == name).values(state=state))
