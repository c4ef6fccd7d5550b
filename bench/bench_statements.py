"""What one statement costs at each layer, on SQLite: CPU per call, in microseconds.

    .venv/bin/python bench/bench_statements.py

From the bare ``sqlite3`` module up to the store's own ``get_job``: where the
per-statement overhead of the store's fast paths comes from. Then how many
statements (BEGINs included) a no-op job's own submit, claim and end send.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select

from jobyard import outcomes
from jobyard.clock import utcnow
from jobyard.models import JobEnd, JobSpec, NewJob
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.rows import job_from_row
from jobyard.store.tables import jobs

CALLS = 3000
LEASE = timedelta(minutes=1)


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
    reader = store.jobs  # its reads: a transaction that begins with a plain BEGIN
    by_id = select(jobs).where(jobs.c.id == job.id)

    def bare_select() -> None:
        bare.execute("BEGIN")
        bare.execute("SELECT * FROM jobs WHERE id = ?", (job.id,)).fetchone()
        bare.execute("COMMIT")

    def empty() -> None:
        with reader._read():
            pass

    def dbapi() -> None:
        with reader._read() as conn:
            cursor = conn.connection.driver_connection.cursor()
            cursor.execute("SELECT * FROM jobs WHERE id = ?", (job.id,))
            cursor.fetchone()

    def prebuilt() -> None:
        with reader._read() as conn:
            conn.execute(by_id).mappings().first()

    def built_each_time() -> None:
        with reader._read() as conn:
            conn.execute(select(jobs).where(jobs.c.id == job.id)).mappings().first()

    with reader._read() as conn:
        row = conn.execute(by_id).mappings().one()
    measure("sqlite3: BEGIN, SELECT by id, COMMIT", bare_select)
    measure("SQLAlchemy: an empty transaction", empty)
    measure("SQLAlchemy transaction + DBAPI cursor", dbapi)
    measure("SQLAlchemy Core, statement built once", prebuilt)
    measure("SQLAlchemy Core, statement built each time", built_each_time)
    measure("job_from_row (row → Job)", lambda: job_from_row(row))
    measure("store.jobs.get_job", lambda: store.jobs.get_job(job.id))
    store.close()
    print(f"{'statements of a job: submit, claim, end':44s} {statements_per_job(path):7.1f}")


def counting(store: Store) -> list[int]:
    """A counter (``[n]``) of the statements ``store`` sends from now on: on SQLite what
    it ran, traced on each connection the store takes (its BEGINs, which go to the
    driver's own cursor, included; its COMMITs, the driver's calls, not); on a server
    database what SQLAlchemy sends."""
    sent = [0]

    def count(statement: str) -> None:
        sent[0] += not statement.startswith("COMMIT")

    def trace(dbapi_connection: Any, *_args: Any) -> None:
        dbapi_connection.set_trace_callback(count)

    if store.dialect == "sqlite":
        event.listen(store.engine, "checkout", trace)
    else:
        event.listen(store.engine, "before_cursor_execute", lambda *_args: count(""))
    return sent


def statements_per_job(path: str, jobs: int = 100) -> float:
    """Statements sent for each job added, claimed alone and ended (one process, no HTTP;
    counted as :func:`counting` does)."""
    store = Store(f"sqlite:///{path}")
    sent = counting(store)
    new = NewJob("noop", {}, JobSpec(python="noop:noop"), "default", 0, JobState.QUEUED)
    try:
        for _ in range(jobs):
            store.jobs.add_jobs([new], utcnow())
            now = utcnow()
            [claimed] = store.queue.claim_jobs("w", "h", None, 1, now, now + LEASE).jobs
            end = outcomes.finished(claimed, outcomes.RunEnd(succeeded=True, exit_code=0), now)
            store.jobs.end_jobs([JobEnd(end, "w", claimed.attempt)], utcnow())
    finally:
        store.close()
    return sent[0] / jobs


if __name__ == "__main__":
    main()
