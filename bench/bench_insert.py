"""Inserting a batch of new jobs: the store's path against SQLAlchemy's multi-row insert.

On a scratch database, ``--rows`` new jobs are inserted ``--times`` times in one
transaction each way, alternated: through the store's own path
(``store.submission.insert_jobs``'s insert: on PostgreSQL one JSON array read by
``json_populate_recordset``) and through SQLAlchemy's multi-row ``INSERT … VALUES``
with ``RETURNING`` in the rows' order (the store's path before, and still MariaDB's).
It prints this process's CPU (the client's side) and the wall time per batch.

    .venv/bin/python bench/bench_insert.py --database postgres --rows 1000 --times 10
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_cluster import scratch_database
from jobyard.clock import utcnow
from jobyard.models import JobSpec, NewJob
from jobyard.states import JobState
from jobyard.store.engine import make_engine
from jobyard.store.migrate import upgrade
from jobyard.store.submission import _INSERT_JOBS, _insert_rows, _new_rows

Insert = Callable[[Connection, list[dict[str, Any]]], list[int]]
WAYS: dict[str, Insert] = {
    "store": _insert_rows,
    "multi-row VALUES": lambda conn, rows: list(conn.scalars(_INSERT_JOBS, rows)),
}


def batch(size: int) -> list[dict[str, Any]]:
    spec = JobSpec(python="bench_jobs:noop")
    now = utcnow()
    base = NewJob(
        type="noop", args={}, spec=spec, queue="default", priority=0, state=JobState.QUEUED
    )
    return _new_rows([replace(base, args={"key": i, "text": "ünïcode"}) for i in range(size)], now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgres", "mariadb"], default="postgres")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--times", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = batch(args.rows)
    with scratch_database(args.database) as (url, _):
        engine = make_engine(make_url(url))
        upgrade(engine)
        try:
            for _ in range(args.rounds):
                for name, insert in WAYS.items():
                    with engine.begin() as conn:
                        cpu, wall = time.process_time(), time.perf_counter()
                        for _ in range(args.times):
                            ids = insert(conn, rows)
                        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                    assert len(ids) == args.rows
                    assert ids == sorted(ids)
                    cpu_ms, wall_ms = 1000 * cpu / args.times, 1000 * wall / args.times
                    print(f"{args.database} {name:18s} {args.rows} rows: "
                          f"client CPU {cpu_ms:6.1f} ms, wall {wall_ms:6.1f} ms")  # fmt: skip
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
