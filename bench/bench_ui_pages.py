"""How long the UI's pages take with many jobs stored (the issue's bar: 200 ms at 100,000).

Run ``python -m bench.bench_ui_pages`` (``--jobs 100000 --rounds 5``, or
``--database-url postgresql://…`` for an empty database of your own): it stores the
jobs straight through the store (a mix of states, types and queues), starts
``jobyard serve --no-worker`` on them, and prints the median time of each page.
The figures are in RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from tests.harness import ADMIN, CONFIG, free_port, wait_for

from jobyard.clock import utcnow
from jobyard.models import JobSpec, NewJob
from jobyard.states import JobState
from jobyard.store import Store

PAGES = [
    "/",
    "/jobs",
    "/jobs?state=failed",
    "/jobs?type=echo&sort=-created_at&page=40",
    "/jobs?search=row%2042-",
    "/jobs/{middle}",
    "/queues",
    "/workers",
    "/notifications",
    "/audit",
    "/submit/echo",
]
STATES = [JobState.SUCCEEDED] * 8 + [JobState.FAILED, JobState.QUEUED, JobState.HELD]


def seed(url: str, count: int) -> None:
    store = Store(url)
    store.migrate()
    now = utcnow()
    spec = JobSpec(argv=["echo", "x"])
    for chunk in range(0, count, 1000):
        batch = [
            NewJob(
                type=random.choice(["echo", "lines", "sleep", "fail"]),
                args={"text": f"row {chunk // 1000}-{i}"},
                spec=spec,
                queue=random.choice(["default", "limited"]),
                priority=0,
                state=random.choice(STATES),
            )
            for i in range(min(1000, count - chunk))
        ]
        store.jobs.add_jobs(batch, now - timedelta(seconds=count - chunk))
    store.close()


def measure(url: str, count: int, rounds: int) -> None:
    port = free_port()
    env = os.environ | {"JOBYARD_ADMIN_PASSWORD": ADMIN[1]}
    command = [sys.executable, "-m", "jobyard", "serve", "--no-worker", "--port", str(port)]
    command += ["--config", str(CONFIG), "--database-url", url]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=ADMIN, timeout=30) as client:
            wait_for(lambda: _up(client), 60, what="the server")
            print(f"| page ({count:,} jobs) | median ms | max ms |\n|---|---|---|")
            for path in PAGES:
                target = path.format(middle=count // 2)
                times = [_timed(client, target) for _ in range(rounds)]
                print(f"| `{target}` | {statistics.median(times):.0f} | {max(times):.0f} |")
    finally:
        server.terminate()
        server.wait(30)


def _up(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def _timed(client: httpx.Client, path: str) -> float:
    start = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == 200, (path, response.status_code)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", help="an empty database (default: a new SQLite file)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = options.database_url or f"sqlite:///{Path(folder) / 'jobs.db'}"
        started = time.perf_counter()
        seed(url, options.jobs)
        print(f"stored {options.jobs:,} jobs in {time.perf_counter() - started:.1f} s\n")
        measure(url, options.jobs, options.rounds)


if __name__ == "__main__":
    main()
