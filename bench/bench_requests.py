"""What one HTTP request costs the server, by route: CPU per request, and requests/s.

A ``jobyard serve --no-worker`` subprocess on a scratch database; one client sends
each kind of request ``--requests`` times over one keep-alive connection, with HTTP
Basic as the CLI and the client do, and reads the server's CPU (psutil) before and
after. ``/healthz`` is the floor of the framework and the middleware (no
credentials, no database); a job's ``GET`` adds the credential check and the
reads; a submit adds the write.

    .venv/bin/python bench/bench_requests.py --database sqlite --requests 3000
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_submit import server


def measure(proc: psutil.Process, send: Callable[[], httpx.Response], n: int) -> str:
    for _ in range(min(200, n)):  # warm up
        send().raise_for_status()
    before, started = proc.cpu_times(), time.perf_counter()
    for _ in range(n):
        send().raise_for_status()
    took, after = time.perf_counter() - started, proc.cpu_times()
    user, system = after.user - before.user, after.system - before.system
    return (
        f"server CPU {1000 * (user + system) / n:.2f} ms/request "
        f"(user {1000 * user / n:.2f}, system {1000 * system / n:.2f}), {n / took:.0f} requests/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "mariadb"], default="sqlite")
    parser.add_argument("--requests", type=int, default=3000, help="of each kind")
    args = parser.parse_args()
    with server(args.database) as running:
        assert running.proc is not None
        proc, client = psutil.Process(running.proc.pid), running.client
        job = client.post("/api/v1/jobs", json={"type": "noop"}).json()["id"]
        kinds: dict[str, Callable[[], httpx.Response]] = {
            "GET /healthz": lambda: client.get("/healthz"),
            "GET /api/v1/jobs/{id}": lambda: client.get(f"/api/v1/jobs/{job}"),
            "GET /api/v1/jobs?per_page=10": lambda: client.get("/api/v1/jobs?per_page=10"),
            "POST /api/v1/jobs": lambda: client.post("/api/v1/jobs", json={"type": "noop"}),
        }
        for name, send in kinds.items():
            print(f"{name:30s} {measure(proc, send, args.requests)}")


if __name__ == "__main__":
    main()
