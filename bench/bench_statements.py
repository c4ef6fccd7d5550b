"""What one statement costs at each layer, on SQLite: CPU per call, in microseconds.

    .venv/bin/python bench/bench_statements.py

From the bare ``sqlite3`` module up to the store's own ``get_job``: where the
per-statement overhead of the store's fast paths comes from.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from jobyard.clock import utcnow
from jobyard.models import JobSpec, NewJob
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.rows import job_from_row
from jobyard.store.tables import jobs

CALLS = 3000


def measure(label: str, call: Callable[[], Any]) -> None:
    for _ in range(100):
        call()
    started = time.process_time()
    for _ in range(CALLS):
        call()
    print(f"{label:44s} {1e6 * (time.process_time() - started) / CALLS:7.1f} µs")


def main() -> None:
    path = f"{tempfile.mkdtemp()}/statements.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    new = NewJob("noop", {}, JobSpec(python="noop:noop"), "default", 0, JobState.QUEUED)
    [(job, _)] = store.jobs.add_jobs([new], utcnow())
    bare = sqlite3.connect(path, isolation_level=None)
    reader = store.engine.execution_options(jobyard_read_only=True)
    by_id = select(jobs).where(jobs.c.id == job.id)

    def bare_select() -> None:
        bare.execute("BEGIN")
        bare.execute("SELECT * FROM jobs WHERE id = ?", (job.id,)).fetchone()
        bare.execute("COMMIT")

    def empty() -> None:
        with reader.begin():
            pass

    def dbapi() -> None:
        with reader.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()
            cursor.execute("SELECT * FROM jobs WHERE id = ?", (job.id,))
            cursor.fetchone()

    def prebuilt() -> None:
        with reader.begin() as conn:
            conn.execute(by_id).mappings().first()

    def built_each_time() -> None:
        with reader.begin() as conn:
            conn.execute(select(jobs).where(jobs.c.id == job.id)).mappings().first()

    with reader.begin() as conn:
        row = conn.execute(by_id).mappings().one()
    measure("sqlite3: BEGIN, SELECT by id, COMMIT", bare_select)
    measure("SQLAlchemy: an empty transaction", empty)
    measure("SQLAlchemy transaction + DBAPI cursor", dbapi)
    measure("SQLAlchemy Core, statement built once", prebuilt)
    measure("SQLAlchemy Core, statement built each time", built_each_time)
    measure("job_from_row (row → Job)", lambda: job_from_row(row))
    measure("store.jobs.get_job", lambda: store.jobs.get_job(job.id))
    store.close()


if __name__ == "__main__":
    main()
