"""Streams catching up on a long log, and what they cost every other request.

Starts a real ``jobyard serve`` on a scratch database, runs one job that writes
``--lines`` lines, then opens ``--streams`` event streams of that job at once,
each replayed from its start (the job has ended: each reads the whole log from
the database, then closes). Meanwhile ``/healthz`` is asked every 50 ms: its
latency is what a user of the server sees while the streams catch up.

    .venv/bin/python bench/bench_catchup.py --database postgres --lines 100000 --streams 5

``--profile FILE`` samples the server with py-spy while the streams run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import ADMIN, Server

from bench.bench_events import scratch_database
from bench.bench_submit import profiled


def probe(url: str, stop: threading.Event, out: list[float]) -> None:
    """``/healthz`` every 50 ms until ``stop``: each answer's latency in ms."""
    with httpx.Client(base_url=url, timeout=60, auth=ADMIN) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            out.append(1000 * (time.perf_counter() - started))
            stop.wait(0.05)


async def replay(url: str, job_id: int) -> int:
    """The job's whole event stream from its start: how many events came."""
    events = 0
    async with (
        httpx.AsyncClient(base_url=url, timeout=None, auth=ADMIN) as client,
        client.stream(
            "GET", f"/api/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "0"}
        ) as response,
    ):
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                events += 1
    return events


def latencies(found: list[float]) -> dict[str, float]:
    ordered = sorted(found)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)],
        "max_ms": ordered[-1],
    }


def measure(server: Server, lines: int, streams: int, profile: Path | None) -> dict[str, Any]:
    job = server.submit("flood", args={"count": lines})
    server.wait_state(job["id"], "succeeded", timeout=600)
    idle: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(target=probe, args=(server.url, stop, idle))
    prober.start()
    time.sleep(2)  # the idle server's latency, for comparison
    stop.set()
    prober.join()
    busy: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(target=probe, args=(server.url, stop, busy))
    prober.start()
    started = time.perf_counter()

    async def all_streams() -> list[int]:
        return list(await asyncio.gather(*(replay(server.url, job["id"]) for _ in range(streams))))

    try:
        with profiled(server, profile):
            counts = asyncio.run(all_streams())
    finally:
        stop.set()
        prober.join()
    took = time.perf_counter() - started
    return {
        "events_per_stream": sorted(set(counts)),
        "streams_took_s": took,
        "events_per_s": sum(counts) / took,
        "healthz_idle": latencies(idle),
        "healthz_during": latencies(busy),
        "healthz_samples": len(busy),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgres", "mariadb"], default="postgres")
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--streams", type=int, default=5)
    parser.add_argument("--profile", type=Path, help="py-spy raw stacks of the server, here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = scratch_database(args.database, workdir)
        server = Server(database_url=url, workdir=workdir).start()
        try:
            result = measure(server, args.lines, args.streams, args.profile)
        finally:
            server.stop()
    print(f"database={args.database} lines={args.lines} streams={args.streams}")
    for key, value in result.items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
