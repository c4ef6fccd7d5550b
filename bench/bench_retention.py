"""Retention on a full database: rows removed, size before/after, the longest transaction.

Fills a database with ``--jobs`` finished jobs (``--lines`` log lines, two events
and a sample each, finished 60 days ago) plus live jobs, then runs the pruner
with the default policy to the end and times every batch (one transaction each).

    .venv/bin/python -m bench.bench_retention --jobs 100000 --lines 5
    .venv/bin/python -m bench.bench_retention --database-url postgresql://…/db
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from jobyard.clock import utcnow
from jobyard.retention.policy import RetentionPolicy
from jobyard.retention.pruner import ORDER, Pruner
from jobyard.store import Store
from jobyard.store.tables import job_events, job_samples, jobs

SPEC = {"argv": ["echo", "hi"]}


def fill(store: Store, count: int, lines: int, live: int) -> None:
    now = utcnow()
    old = now - timedelta(days=60)
    with store.engine.begin() as conn:
        next_id = int(conn.execute(select(func.coalesce(func.max(jobs.c.id), 0))).scalar_one())
    for start in range(0, count + live, 5000):
        ids = range(next_id + start + 1, next_id + min(start + 5000, count + live) + 1)
        rows = [_job(i, old if i - next_id <= count else None, now) for i in ids]
        events: list[dict[str, Any]] = []
        for i in ids:
            events.append(_event(i, "state", None, old, {"state": "queued"}))
            events += [_event(i, "log", seq, old, None) for seq in range(1, lines + 1)]
            events.append(_event(i, "state", None, old, {"state": "succeeded"}))
        samples = [
            {"job_id": i, "attempt": 1, "at": old, "cpu_seconds": 1.0, "rss": 1} for i in ids
        ]
        with store.engine.begin() as conn:
            conn.execute(insert(jobs), rows)
            conn.execute(insert(job_events), events)
            conn.execute(insert(job_samples), samples)


def _job(job_id: int, finished: Any, now: Any) -> dict[str, Any]:
    return {
        "id": job_id, "type": "echo", "args": {}, "spec": SPEC, "queue": "default",
        "priority": 0, "state": "succeeded" if finished else "running", "created_at": now,
        "updated_at": now, "finished_at": finished, "paused_seconds": 0.0, "attempt": 1,
        "max_attempts": 1, "restart_count": 0, "metrics": {}, "details": {},
        "output_bytes": 0, "log_lines": 0, "deps_pending": 0, "route": "",
    }  # fmt: skip


def _event(job_id: int, kind: str, seq: int | None, at: Any, data: Any) -> dict[str, Any]:
    line = None if seq is None else f"line {seq} of job {job_id}, some output text"
    stream = None if seq is None else "stdout"
    return {"job_id": job_id, "kind": kind, "seq": seq, "at": at, "stream": stream,
            "line": line, "data": data}  # fmt: skip


def size(store: Store) -> int:
    """Bytes the data takes: SQLite pages in use, or PostgreSQL/MariaDB's own figure."""
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            pages = conn.execute(text("PRAGMA page_count")).scalar_one()
            free = conn.execute(text("PRAGMA freelist_count")).scalar_one()
            page = conn.execute(text("PRAGMA page_size")).scalar_one()
            return int((pages - free) * page)
        if store.dialect == "postgresql":
            return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar())
        query = "SELECT SUM(data_length + index_length) FROM information_schema.tables "
        query += "WHERE table_schema = DATABASE()"
        return int(conn.execute(text(query)).scalar() or 0)


class Timed:
    """The store's retention part, with every batch timed."""

    def __init__(self, part: Any) -> None:
        self.part = part
        self.longest = 0.0
        self.batches = 0

    def __getattr__(self, name: str) -> Any:
        verb = getattr(self.part, name)
        if not name.startswith("prune_"):
            return verb

        def timed(*args: Any) -> Any:
            began = time.perf_counter()
            try:
                return verb(*args)
            finally:
                self.longest = max(self.longest, time.perf_counter() - began)
                self.batches += 1

        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--live", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    store = Store(url)
    store.migrate()
    began = time.perf_counter()
    fill(store, args.jobs, args.lines, args.live)
    print(
        f"filled {args.jobs} finished + {args.live} live jobs in {time.perf_counter() - began:.1f}s"
    )
    before = size(store)
    timed = Timed(store.retention)
    pruner = Pruner(timed, RetentionPolicy(), batch=args.batch, pause=0, max_batches=None)  # type: ignore[arg-type]
    began = time.perf_counter()
    tally = pruner.run_once(utcnow())
    took = time.perf_counter() - began
    after = size(store)
    with store.engine.connect() as conn:
        left = conn.execute(select(func.count()).select_from(jobs)).scalar_one()
    print(f"database {store.dialect}: {before / 1e6:.1f} MB before, {after / 1e6:.1f} MB after")
    print("removed: " + ", ".join(f"{k} {tally.rows[k]} (+{tally.owned[k]})" for k in ORDER))
    print(f"{timed.batches} batches of ≤{args.batch} rows in {took:.1f}s; "
          f"longest transaction {timed.longest * 1000:.0f} ms; jobs left {left}")  # fmt: skip
    store.close()


if __name__ == "__main__":
    main()
