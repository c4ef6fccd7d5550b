"""Submitting jobs over HTTP: jobs/s and the server's CPU per submitted job.

A ``jobyard serve --no-worker`` subprocess (so only the submit path runs) on a
scratch database; one client submits no-op jobs over one keep-alive connection,
one at a time (``POST /api/v1/jobs``), then in batches (``POST /api/v1/jobs/batch``).
The server's CPU is read from its process counters (psutil) before and after.

    .venv/bin/python bench/bench_submit.py --database sqlite --jobs 3000 --batches 20
    .venv/bin/python bench/bench_submit.py --database postgres --jobs 3000 --batches 20
    .venv/bin/python bench/bench_submit.py --database sqlite --variant keys   # idempotency keys
    .venv/bin/python bench/bench_submit.py --database sqlite --variant args   # typed params
    .venv/bin/python bench/bench_submit.py --batches 0 --profile /tmp/submit.txt  # py-spy
    .venv/bin/python bench/bench_submit.py --jobs 0 --profile /tmp/batches.txt

``--profile`` samples the server with py-spy (only while a thread holds the GIL) during
the one-at-a-time submits (the batches with ``--jobs 0``) and writes py-spy's raw
collapsed stacks to the file.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import Server

from bench.bench_cluster import scratch_database
from bench.bench_embedded import _py_spy

BATCH = 1000
Body = Callable[[int], dict[str, Any]]
VARIANTS: dict[str, Body] = {
    "plain": lambda i: {"type": "noop"},
    "keys": lambda i: {"type": "noop", "idempotency_key": f"k-{time.time_ns()}-{i}"},
    "args": lambda i: {"type": "nap", "args": {"seconds": 1 + i % 5}},
}


@contextmanager
def server(kind: str) -> Iterator[Server]:
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        running = Server(url, Path(tmp), args=["--no-worker"]).start()
        try:
            yield running
        finally:
            running.stop()


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    with scratch_database(kind) as (url, _):
        yield url


def cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def measure(
    running: Server, n: int, post: Callable[[httpx.Client, int], int]
) -> tuple[float, float]:
    """(jobs/s, server CPU ms per job) for ``n`` jobs sent by ``post``."""
    assert running.proc is not None
    proc = psutil.Process(running.proc.pid)
    client = running.client
    before, start = cpu(proc), time.perf_counter()
    sent = 0
    while sent < n:
        sent += post(client, sent)
    elapsed, used = time.perf_counter() - start, cpu(proc) - before
    return sent / elapsed, 1000 * used / sent


def one(body: Body) -> Callable[[httpx.Client, int], int]:
    def post(client: httpx.Client, i: int) -> int:
        answer = client.post("/api/v1/jobs", json=body(i))
        assert answer.status_code == 201, answer.text
        return 1

    return post


def batch(body: Body) -> Callable[[httpx.Client, int], int]:
    def post(client: httpx.Client, i: int) -> int:
        jobs = [body(i + k) for k in range(BATCH)]
        answer = client.post("/api/v1/jobs/batch", json={"jobs": jobs})
        assert answer.status_code == 201, answer.text
        return len(answer.json()["ids"])

    return post


@contextmanager
def profiled(running: Server, out: Path | None) -> Iterator[None]:
    """py-spy samples the server while the block runs, if ``out`` is given."""
    assert running.proc is not None
    spy = _py_spy(running.proc.pid, out) if out else None
    try:
        yield
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # it writes its file then
            spy.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "mariadb"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=3000, help="submitted one at a time")
    parser.add_argument("--batches", type=int, default=20, help=f"of {BATCH} jobs")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="plain")
    parser.add_argument("--profile", type=Path, help="py-spy raw stacks of the server, here")
    args = parser.parse_args()
    body = VARIANTS[args.variant]
    with server(args.database) as running:
        measure(running, 200, one(body))  # warm up: imports, caches, connections
        if args.jobs:
            with profiled(running, args.profile):
                rate, ms = measure(running, args.jobs, one(body))
            print(f"{args.database} {args.variant} one at a time: {args.jobs} jobs, "
                  f"{rate:,.0f} jobs/s, server CPU {ms:.3f} ms/job")  # fmt: skip
        if not args.batches:
            return
        measure(running, BATCH, batch(body))  # the batch path's own warm-up
        with profiled(running, args.profile if not args.jobs else None):
            rate, ms = measure(running, args.batches * BATCH, batch(body))
        print(f"{args.database} {args.variant} batches of {BATCH}: {args.batches * BATCH} jobs, "
              f"{rate:,.0f} jobs/s, server CPU {ms:.3f} ms/job")  # fmt: skip


if __name__ == "__main__":
    main()
