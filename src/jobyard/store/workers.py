"""Worker rows: what each worker runs, drain requests and the worker's own state."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Connection, delete, select, text, update

from jobyard.models import WorkerInfo
from jobyard.states import LIVE
from jobyard.store.part import Part
from jobyard.store.rows import worker_from_row
from jobyard.store.tables import jobs, workers

_LIVE = [state.value for state in LIVE]


class SqlWorkers(Part):
    """:class:`~jobyard.store.protocol.WorkerStore` on SQL."""

    def register_worker(self, info: WorkerInfo) -> None:
        """Insert the worker, or replace the row of a worker with the same name."""
        values = dataclasses.asdict(info)
        name = values.pop("name")
        self._upsert(workers, workers.c.name == name, values, {"name": name})

    def worker_heartbeat(self, name: str, now: datetime) -> None:
        """Record that the worker is alive at ``now``."""
        with self._write() as conn:
            conn.execute(update(workers).where(workers.c.name == name).values(heartbeat_at=now))

    def unregister_worker(self, name: str) -> None:
        """Forget the worker (its jobs are left as they are)."""
        with self._write() as conn:
            conn.execute(delete(workers).where(workers.c.name == name))

    def get_worker(self, name: str) -> WorkerInfo | None:
        """The registered worker, or None. Exactly ``name``: MariaDB's collation finds
        ``w1`` for ``w1 `` (trailing spaces are ignored)."""
        with self._read() as conn:
            row = conn.execute(select(workers).where(workers.c.name == name)).mappings().first()
        return worker_from_row(row) if row and row["name"] == name else None

    def list_workers(self) -> list[WorkerInfo]:
        """Every registered worker, by name."""
        with self._read() as conn:
            rows = conn.execute(select(workers).order_by(workers.c.name)).mappings()
            return [worker_from_row(row) for row in rows]

    def worker_jobs(self, names: Collection[str] | None = None) -> dict[str, list[int]]:
        """The ids of the running and paused jobs of each worker (of ``names``, or all)."""
        with self._read() as conn:
            return jobs_by_worker(conn, names)

    def request_drain(self, name: str, timeout: float | None, now: datetime) -> bool:
        """Ask the worker to drain (it reads this at its next heartbeat); False if unknown."""
        with self._write() as conn:
            return request_drain(conn, name, timeout, now)

    def set_worker_state(self, name: str, state: str) -> None:
        """Record the state the worker is in (``running``, ``draining``)."""
        with self._write() as conn:
            set_state(conn, name, state)


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
        # Workers LISTEN on this channel: the request is seen now, not at the next heartbeat,
        # and only by the worker named (``d:<worker>``, read by jobyard.events.wakeups).
        notify = text("SELECT pg_notify('jobyard_jobs', :payload)")
        conn.execute(notify, {"payload": f"d:{name}"})
    return bool(changed)


def set_state(conn: Connection, name: str, state: str) -> None:
    conn.execute(update(workers).where(workers.c.name == name).values(state=state))
