"""Event latency (worker → subscriber) and many concurrent subscribers on one API process.

Starts a real ``jobyard serve`` on a scratch database, opens SSE subscribers to
the global stream, submits jobs, and measures, for every state event, the time
from the event's timestamp (taken by the writer just before its transaction)
to its arrival at the subscriber. Also checks that every subscriber got every
event, once and in order.

    .venv/bin/python bench/bench_events.py --database postgres --jobs 200 --subscribers 200
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import Server, read_sse, wait_for

ADMIN = {
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}


def scratch_database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    name = f"jobyard_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(ADMIN[kind], isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return ADMIN[kind].rsplit("/", 1)[0] + f"/{name}"


async def subscriber(
    url: str, tag: str, expected: int, ready: asyncio.Event, out: list[tuple[int, float]]
) -> None:
    async with (
        httpx.AsyncClient(base_url=url, timeout=None) as client,
        client.stream("GET", "/api/v1/events", params={"type": "echo"}) as response,
    ):
        ready.set()
        lines = aiter_lines(response)
        async for event in lines:
            if event.data.get("type") != "echo":
                continue
            at = datetime.fromisoformat(event.data["at"]).timestamp()
            out.append((event.id or 0, time.time() - at))
            if len(out) >= expected:
                return


async def aiter_lines(response: httpx.Response) -> Any:
    buffer: list[str] = []
    async for line in response.aiter_lines():
        buffer.append(line)
        if line == "":
            for event in read_sse(iter(buffer), stop=lambda _: False):
                yield event
            buffer = []


async def run(server: Server, jobs: int, subscribers: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    expected = jobs * 3  # created, running, terminated
    received: list[list[tuple[int, float]]] = [[] for _ in range(subscribers)]
    ready = [asyncio.Event() for _ in range(subscribers)]
    tasks = [
        asyncio.create_task(subscriber(server.url, tag, expected, ready[i], received[i]))
        for i in range(subscribers)
    ]
    for event in ready:
        await event.wait()
    await asyncio.to_thread(
        wait_for,
        lambda: server.client.get("/healthz").json()["stream_subscribers"] >= subscribers,
    )
    async with httpx.AsyncClient(base_url=server.url) as client:
        for i in range(jobs):
            response = await client.post(
                "/api/v1/jobs", json={"type": "echo", "args": {"text": f"{tag}-{i}"}}
            )
            response.raise_for_status()
            await asyncio.sleep(0.02)  # a steady trickle, not one burst
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)
    first_ids = [event_id for event_id, _ in received[0]]
    complete = all([i for i, _ in r] == first_ids for r in received)
    latencies = sorted(latency for r in received for _, latency in r)
    return {
        "events_per_subscriber": len(first_ids),
        "all_identical_and_complete": complete and len(first_ids) == expected,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
        "max_ms": 1000 * latencies[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgres", "mariadb"], default="postgres")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = scratch_database(args.database, workdir)
        server = Server(database_url=url, workdir=workdir, env={"JOBYARD_CONCURRENCY": "4"}).start()
        try:
            result = asyncio.run(run(server, args.jobs, args.subscribers))
        finally:
            server.stop()
    print(f"database={args.database} jobs={args.jobs} subscribers={args.subscribers}")
    for key, value in result.items():
        print(f"  {key}: {value:.1f}" if isinstance(value, float) else f"  {key}: {value}")


if __name__ == "__main__":
    main()
