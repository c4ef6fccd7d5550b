"""Soak: a server at a steady job rate for a bounded time, with streams open and retention on.

Starts a real ``jobyard serve`` (a scratch SQLite file, or a scratch database on the
local PostgreSQL with ``--database postgres``) whose retention keeps finished work
for minutes, not days, and prunes every 10 s. For ``--minutes`` it submits no-op jobs
at ``--rate`` per second, keeps the global event stream (``?from=now``) and the
event streams of a few long sleeping jobs open, and every ``--every`` seconds
samples the RSS and open file descriptors of the server and of its pool children
and the database size (``--samples FILE`` also appends each sample to FILE as it is
taken). At the end it prints the least-squares slope per hour of
RSS and fds, the database size range, jobs submitted and finished, and 5xx answers.
Not run in CI.

``--tracemalloc-dump PATH`` has the server start ``tracemalloc`` (25 frames) 20 s after
its launch and write a snapshot to ``PATH.<n>`` every minute (``bench/tracedump``); compare
two of them with ``python -m bench.tracediff PATH.1 PATH.5``. Tracing slows the
server down: its RSS figures are not comparable with an untraced run.

    .venv/bin/python -m bench.soak --minutes 30 --rate 50
    .venv/bin/python -m bench.soak --database postgres --minutes 30
    .venv/bin/python -m bench.soak --minutes 6 --tracemalloc-dump /tmp/soak.snap
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import ADMIN, Server, read_sse

from bench.bench_cluster import scratch_database

CONFIG = """\
job_types:
  noop:
    command: ["true"]
  sleep:
    command: ["sleep", "{seconds}"]
    params:
      seconds: {type: number, default: 60}
    kill_grace: 1s
retention: {jobs: 2m, logs: 1m, events: 2m, samples: 1m, notifications: 2m, audit: 2m}
"""
JOB_STREAMS = 3  # sleeping jobs whose event streams stay open the whole run
ENV = {"JOBYARD_RETENTION_INTERVAL": "10", "JOBYARD_CONCURRENCY": "8"}
TRACEDUMP = Path(__file__).resolve().parent / "tracedump"  # holds the sitecustomize


def server_env(dump: Path | None, frames: int, every: float) -> dict[str, str | None]:
    """The server's environment; with ``dump``, traced and dumping snapshots there."""
    env: dict[str, str | None] = dict(ENV)
    if dump is not None:
        paths = [str(TRACEDUMP), os.environ.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        env["JOBYARD_TRACEMALLOC_FRAMES"] = str(frames)
        env["JOBYARD_TRACEMALLOC_AFTER"] = "20"  # past the imports: tracing them takes minutes
        env["JOBYARD_TRACEMALLOC_EVERY"] = str(every)
        env["JOBYARD_TRACEMALLOC_DUMP"] = str(dump)
    return env


@dataclass
class Tally:
    """What the submitters and stream readers saw; shared by their threads."""

    submitted: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    finished: set[int] = field(default_factory=set)
    stream_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, status: int) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.submitted += status == 201

    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the start
    rss: dict[int, int]  # pid -> bytes
    fds: dict[int, int]  # pid -> open descriptors
    db_bytes: int


def submitter(url: str, rate: float, until: float, tally: Tally) -> None:
    """POST no-op jobs on a fixed schedule (catching up when late, never bursting ahead)."""
    start = time.monotonic()
    with httpx.Client(base_url=url, auth=ADMIN, timeout=30) as client:
        sent = 0
        while (now := time.monotonic()) < until:
            due = start + sent / rate
            if due > now:
                time.sleep(due - now)
                continue
            try:
                tally.answer(client.post("/api/v1/jobs", json={"type": "noop"}).status_code)
            except httpx.HTTPError as exc:
                tally.answer(0)
                tally.stream_errors.append(f"submit: {exc!r}")
            sent += 1


def follow(url: str, path: str, tally: Tally, stop: threading.Event, terminals: bool) -> None:
    """Read an event stream until ``stop``; with ``terminals``, count the jobs that ended."""
    timeout = httpx.Timeout(30, read=None)
    try:
        with (
            httpx.Client(base_url=url, auth=ADMIN, timeout=timeout) as client,
            client.stream("GET", path) as response,
        ):
            tally.answer(response.status_code)
            for event in read_sse(response.iter_lines(), stop=lambda _: stop.is_set()):
                if terminals and event.event == "job_terminated":
                    with tally.lock:
                        tally.finished.add(event.data["job_id"])
                if stop.is_set():
                    return
            if not stop.is_set():
                tally.stream_errors.append(f"{path} ended early")
    except httpx.HTTPError as exc:
        if not stop.is_set():
            tally.stream_errors.append(f"{path}: {exc!r}")


def processes(server: psutil.Process) -> list[psutil.Process]:
    """The server and its long-lived children (the runner pool), not the jobs' commands."""
    found = [server]
    for child in server.children(recursive=True):
        try:
            if any("jobyard" in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue  # gone meanwhile
    return found


def sample(server: psutil.Process, db_size: Any, started: float) -> Sample:
    rss: dict[int, int] = {}
    fds: dict[int, int] = {}
    for proc in processes(server):
        try:
            rss[proc.pid], fds[proc.pid] = proc.memory_info().rss, proc.num_fds()
        except psutil.Error:
            continue
    return Sample(time.monotonic() - started, rss, fds, db_size())


def keep(taken: Sample, out: Path | None) -> Sample:
    """Append ``taken`` to ``out`` as a JSON line: a run cut short still leaves its figures."""
    if out is not None:
        with out.open("a") as lines:
            lines.write(json.dumps(asdict(taken)) + "\n")
    return taken


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of ``(seconds, value)`` points, per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return 3600 * sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[tuple[str, Any]]:
    """The server's database URL and a function that measures its size in bytes."""
    if kind == "sqlite":
        path = tmp / "soak.db"

        def file_size() -> int:
            return sum(p.stat().st_size for p in tmp.glob("soak.db*"))

        yield f"sqlite:///{path}", file_size
        return
    with scratch_database(kind) as (url, name):
        engine = create_engine(url)

        def pg_size() -> int:
            with engine.connect() as conn:
                size = conn.execute(text("SELECT pg_database_size(:n)"), {"n": name})
                return int(size.scalar_one())

        try:
            yield url, pg_size
        finally:
            engine.dispose()


def series(samples: list[Sample], of: str, pids: set[int] | None) -> list[tuple[float, float]]:
    """``(seconds, total)`` of ``rss`` or ``fds`` over ``pids`` (all processes: None)."""
    totals = []
    for s in samples:
        values: dict[int, int] = getattr(s, of)
        totals.append((s.at, float(sum(v for p, v in values.items() if pids is None or p in pids))))
    return totals


def slopes(samples: list[Sample], of: str, server: set[int], scale: float) -> dict[str, float]:
    """Slopes per hour of the server's and all processes' ``of``, over the whole run and
    over its second half (once retention has begun to remove as much as comes in)."""
    later = [s for s in samples if s.at >= samples[-1].at / 2]
    found: dict[str, float] = {}
    for name, part in (("", samples), ("_second_half", later)):
        for who, pids in (("server", server), ("all", None)):
            found[who + name] = round(slope_per_hour(series(part, of, pids)) / scale, 2)
    return found


def summarize(samples: list[Sample], tally: Tally, args: argparse.Namespace) -> dict[str, Any]:
    server = {next(iter(samples[0].rss))}  # sampled first
    seen = {pid for s in samples for pid in s.rss}
    first, last = samples[0], samples[-1]
    sizes = [s.db_bytes for s in samples]
    return {
        "database": args.database,
        "minutes": args.minutes,
        "rate_per_s": args.rate,
        "samples": len(samples),
        "processes_seen": len(seen),
        "rss_mb_first_last": [round(sum(s.rss.values()) / 2**20, 1) for s in (first, last)],
        "rss_slope_mb_per_hour": slopes(samples, "rss", server, 2**20),
        "fds_first_last": [sum(s.fds.values()) for s in (first, last)],
        "fds_slope_per_hour": slopes(samples, "fds", server, 1),
        "db_mb_min_max": [round(min(sizes) / 2**20, 2), round(max(sizes) / 2**20, 2)],
        "submitted": tally.submitted,
        "rate_held_per_s": round(tally.submitted / (args.minutes * 60), 1),
        "finished": len(tally.finished),
        "statuses": dict(sorted(tally.statuses.items())),
        "server_errors_5xx": tally.server_errors(),
        "stream_errors": tally.stream_errors[:10],
    }


def soak(server: Server, db_size: Any, args: argparse.Namespace) -> dict[str, Any]:
    tally, stop = Tally(), threading.Event()
    sleepers = [server.submit("sleep", args={"seconds": args.minutes * 60 + 120})["id"]
                for _ in range(JOB_STREAMS)]  # fmt: skip
    paths = [("/api/v1/events?from=now", True)]
    paths += [(f"/api/v1/jobs/{job_id}/events", False) for job_id in sleepers]
    readers = [threading.Thread(target=follow, args=(server.url, p, tally, stop, t), daemon=True)
               for p, t in paths]  # fmt: skip
    for reader in readers:
        reader.start()
    started = time.monotonic()
    until = started + args.minutes * 60
    submit = threading.Thread(target=submitter, args=(server.url, args.rate, until, tally))
    submit.start()
    assert server.proc is not None
    proc, samples = psutil.Process(server.proc.pid), []
    while time.monotonic() < until:
        samples.append(keep(sample(proc, db_size, started), args.samples))
        time.sleep(min(args.every, max(0.0, until - time.monotonic())))
    submit.join()
    drain = time.monotonic() + 30  # let the last jobs end (bounded)
    while len(tally.finished) < tally.submitted and time.monotonic() < drain:
        time.sleep(0.5)
    samples.append(keep(sample(proc, db_size, started), args.samples))
    stop.set()
    for job_id in sleepers:
        server.act(job_id, "kill")
    for reader in readers:
        reader.join(timeout=10)
    tally.finished -= set(sleepers)  # counted: the no-op jobs only
    return summarize(samples, tally, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=50, help="jobs submitted per second")
    parser.add_argument("--every", type=float, default=5, help="seconds between samples")
    parser.add_argument("--samples", type=Path, help="append each sample to this file (JSON)")
    parser.add_argument("--tracemalloc-dump", type=Path, help="server snapshots to PATH.<n>")
    parser.add_argument("--tracemalloc-frames", type=int, default=25, help="0: figures only")
    parser.add_argument("--tracemalloc-every", type=float, default=60, help="seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database(args.database, Path(tmp)) as (url, size):
        config = Path(tmp) / "jobyard.yaml"
        config.write_text(CONFIG)
        env = server_env(args.tracemalloc_dump, args.tracemalloc_frames, args.tracemalloc_every)
        server = Server(url, Path(tmp), config=config, env=env).start()
        try:
            result = soak(server, size, args)
        finally:
            server.stop()
    print(json.dumps(result, indent=2))
    sys.exit(1 if result["server_errors_5xx"] else 0)


if __name__ == "__main__":
    main()
