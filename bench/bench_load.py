"""Load: many HTTP clients submitting and reading at once, plus many SSE followers.

Starts a real ``jobyard serve`` on a scratch SQLite database, runs ``--clients``
clients for ``--seconds`` (each loops: submit a job, read it, list jobs) and
``--followers`` clients on the global event stream, then reports the answers by
status, latency percentiles of the answers that were not shed, what was shed
(503 with ``Retry-After``, after which a client waits as asked) and any other
5xx, which is a failure (exit status 1).

    .venv/bin/python bench/bench_load.py --seconds 60 --clients 200 --followers 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import ADMIN, Server


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.shed = 0
        self.latencies: list[float] = []
        self.events = 0
        self.errors: Counter[str] = Counter()

    def record(self, response: httpx.Response, seconds: float) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code == 503 and "retry-after" in response.headers:
            self.shed += 1
        else:
            self.latencies.append(seconds)


async def client_loop(http: httpx.AsyncClient, tally: Tally, until: float) -> None:
    while time.monotonic() < until:
        for method, path, body in (
            ("POST", "/api/v1/jobs", {"type": "noop"}),
            ("GET", "/api/v1/jobs", None),
        ):
            started = time.monotonic()
            try:
                response = await http.request(method, path, json=body, params=_params(path))
            except httpx.HTTPError as exc:
                tally.errors[type(exc).__name__] += 1
                continue
            tally.record(response, time.monotonic() - started)
            if method == "POST" and response.status_code == 201:
                await read_job(http, tally, response.json()["id"])
            await back_off(response)


async def back_off(response: httpx.Response) -> None:
    """Wait as a shed answer's ``Retry-After`` asks, as a well-behaved client does."""
    if response.status_code == 503 and "retry-after" in response.headers:
        await asyncio.sleep(float(response.headers["retry-after"]))


async def read_job(http: httpx.AsyncClient, tally: Tally, job_id: int) -> None:
    started = time.monotonic()
    try:
        job = await http.get(f"/api/v1/jobs/{job_id}")
    except httpx.HTTPError as exc:
        tally.errors[type(exc).__name__] += 1
        return
    tally.record(job, time.monotonic() - started)


def _params(path: str) -> dict[str, Any] | None:
    return {"per_page": 20, "sort": "-created_at"} if path == "/api/v1/jobs" else None


async def follower(http: httpx.AsyncClient, tally: Tally, until: float) -> None:
    try:
        async with http.stream("GET", "/api/v1/events", params={"from": "now"}) as response:
            tally.record(response, 0.0)
            if response.status_code != 200:
                return
            async for line in response.aiter_lines():
                tally.events += line.startswith("data:")
                if time.monotonic() >= until:
                    return
    except httpx.HTTPError as exc:
        tally.errors[type(exc).__name__] += 1


async def run(url: str, seconds: float, clients: int, followers: int) -> dict[str, Any]:
    tally, streams = Tally(), Tally()
    limits = httpx.Limits(max_connections=clients + followers + 10)
    async with httpx.AsyncClient(base_url=url, auth=ADMIN, timeout=60, limits=limits) as http:
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(follower(http, streams, until + 1) for _ in range(followers)),
            *(client_loop(http, tally, until) for _ in range(clients)),
        )
    return report(tally, streams, seconds)


def report(tally: Tally, streams: Tally, seconds: float) -> dict[str, Any]:
    ordered = sorted(tally.latencies) or [0.0]

    def percentile(p: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)

    bad = {s: n for s, n in (tally.statuses + streams.statuses).items() if s >= 500}
    bad[503] = bad.get(503, 0) - tally.shed - streams.shed
    return {
        "requests": sum(tally.statuses.values()),
        "requests_per_s": round(sum(tally.statuses.values()) / seconds, 1),
        "statuses": dict(sorted(tally.statuses.items())),
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
        "shed": tally.shed,
        "streams_open": streams.statuses[200],
        "streams_shed": streams.shed,
        "stream_events": streams.events,
        "other_5xx": {s: n for s, n in bad.items() if n},
        "transport_errors": dict(tally.errors + streams.errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--max-requests", type=int, help="the server's JOBYARD_MAX_REQUESTS")
    args = parser.parse_args()
    env = {"JOBYARD_CONCURRENCY": "4"}
    if args.max_requests:
        env["JOBYARD_MAX_REQUESTS"] = str(args.max_requests)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = Server(f"sqlite:///{workdir / 'load.db'}", workdir, env=dict(env)).start()
        try:
            result = asyncio.run(run(server.url, args.seconds, args.clients, args.followers))
        finally:
            server.stop()
    print(json.dumps(result, indent=2))
    sys.exit(1 if result["other_5xx"] else 0)


if __name__ == "__main__":
    main()
