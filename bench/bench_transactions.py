"""PostgreSQL transactions per job, by kind, read from the server's own statement log.

Starts the PostgreSQL shape of the side-by-side suite (``serve --no-worker`` and two
``worker --concurrency 1`` on a scratch database with ``log_statement = 'all'``),
submits no-op jobs one at a time over HTTP, waits until all have succeeded, then
reads the statements the server logged for that database meanwhile: each
``BEGIN`` … ``COMMIT``/``ROLLBACK`` of one backend is a transaction, named by its
first two statements; a statement outside one is a transaction of its own.
The harness's own "how many succeeded" polls are left out.

    .venv/bin/python bench/bench_transactions.py --jobs 200
    .venv/bin/python bench/bench_transactions.py --jobs 100 --session  # and pg_stat

pg_stat counts what the log does not show: each transaction that sends a NOTIFY
wakes every backend that LISTENs in the database, and each spends a transaction
reading the notification queue.

Needs PostgreSQL on 127.0.0.1:5432 (``postgres`` superuser) and read access to its
log file (``--log``, the Debian default below).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import wait_for

from bench.compare.jobyard import JobyardPostgres
from bench.compare.system import PG_ADMIN

LOG = "/var/log/postgresql/postgresql-15-main.log"
# The Debian default ``log_line_prefix = '%m [%p] %q%u@%d '``; simple and extended protocol.
LINE = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] \S+@(\S+) LOG:  (?:statement|execute [^:]*): (.*)$")
HARNESS = "SELECT count(*) FROM jobs WHERE state = 'succeeded'"


def run(jobs: int, log: str, session: bool = False) -> tuple[float, str, str, int | None]:
    """Submit ``jobs`` no-op jobs into the shape; seconds taken, the log of the run, the
    scratch database's name, and (``session``) what ``pg_stat_database`` counted.

    With ``session`` the count covers the whole session, start and stop included
    (pg_stat is read when no backend serves the database, once they flushed their
    counts), and so does the log; otherwise the log from the first counted submit
    to the last job's end, after a warm-up.
    """
    system = JobyardPostgres(Path(tempfile.mkdtemp()), "127.0.0.1:9")  # stamps go nowhere
    system.prepare()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {system.pg.name} SET log_statement = 'all'".encode())
    counted = None
    try:
        before = system.pg.xacts() if session else 0
        mark = os.path.getsize(log)
        system.start()
        warm = 0 if session else 20  # connections, imports and the pool's children
        for key in range(warm):
            system.submit(key)
        wait_for(lambda: (system.completed() or 0) >= warm, 60, what="the warm-up jobs")
        if not session:
            mark = os.path.getsize(log)
        started = time.perf_counter()
        for key in range(jobs):
            system.submit(warm + key)
        wait_for(lambda: (system.completed() or 0) >= warm + jobs, 300, interval=0.2)
        took, end = time.perf_counter() - started, os.path.getsize(log)
        if session:
            system.stop()
            counted, end = system.pg.xacts() - before, os.path.getsize(log)
    finally:
        system.stop()
        system.cleanup()
    with open(log, errors="replace") as text:
        text.seek(mark)
        return took, text.read(end - mark), system.pg.name, counted


def transactions(text: str, database: str | None = None) -> Counter[str]:
    """Transactions by kind (their first two statements, shortened)."""
    kinds: Counter[str] = Counter()
    open_by_backend: dict[str, list[str]] = {}
    for line in text.splitlines():
        found = LINE.match(line)
        if not found or (database and found[2] != database) or found[3].startswith(HARNESS):
            continue
        backend, statement = found[1], " ".join(found[3].split())
        word = statement.split(" ", 1)[0].upper()
        if word == "BEGIN":
            open_by_backend[backend] = []
        elif word in ("COMMIT", "ROLLBACK"):
            statements = open_by_backend.pop(backend, [])
            kinds[" | ".join(s[:60] for s in statements[:2]) or "(empty)"] += 1
        elif backend in open_by_backend:
            open_by_backend[backend].append(statement)
        else:
            kinds[f"(alone) {statement[:80]}"] += 1
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--log", default=LOG, help="the PostgreSQL server's log file")
    parser.add_argument(
        "--session", action="store_true", help="count the whole session, by pg_stat too"
    )
    args = parser.parse_args()
    took, text, database, counted = run(args.jobs, args.log, args.session)
    kinds = transactions(text, database)
    total = sum(kinds.values())
    print(f"{args.jobs} jobs in {took:.1f} s: {total} transactions, {total / args.jobs:.2f} a job")
    if counted is not None:
        print(
            f"pg_stat_database over the session: {counted} transactions (the log: {total}; "
            "pg_stat also counts this harness's completion polls, every 0.2 s)"
        )
    for kind, count in kinds.most_common(20):
        print(f"{count:6d}  {count / args.jobs:5.2f} a job  {kind}")


if __name__ == "__main__":
    main()
