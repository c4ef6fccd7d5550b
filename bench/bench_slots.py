"""What adding slots to the embedded worker buys: a workflow's nodes, and /bin/true jobs.

``workflow`` runs a wide workflow (1 → N-2 → 1 no-op Python nodes, bench_dag.py's) on
a ``jobyard serve`` with ``--concurrency`` slots, then reads each middle node's times
from the database: the rate, each node's time from its claim's transaction to its
stored end (p50/p90/p99), the server's CPU a job and how much of a core that was, and
how often its threads switched per job (``/proc/<pid>/task/*/status``: of their own
accord, waiting on a lock, an event, a pipe or the GIL; and forced); with
``--by-thread``, by thread.

``chain`` runs a chain of N no-op Python nodes and prints how long each node waited
after its upstream's end: from that end's commit to its own claim's.

``commands`` queues ``/bin/true`` jobs (the side-by-side suite's phase: queue paused,
jobs submitted in batches, then resumed) and prints their rate against the spawn
floor, ``posix_spawn`` + ``waitpid`` in a loop in one process, measured right after.

    .venv/bin/python bench/bench_slots.py workflow --nodes 2000 --concurrency 4 16
    PATH=.venv/bin:$PATH .venv/bin/python bench/bench_slots.py workflow --concurrency 4 --by-thread
    PATH=.venv/bin:$PATH .venv/bin/python bench/bench_slots.py workflow --nodes 10000 \
        --concurrency 4 --profile /tmp/workflow.txt
    .venv/bin/python bench/stacks.py /tmp/workflow.txt
    .venv/bin/python bench/bench_slots.py chain --nodes 300 --concurrency 4
    .venv/bin/python bench/bench_slots.py commands --jobs 500 --concurrency 2 4 8 16
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import Server, wait_for

from bench.bench_dag import wide_config
from bench.bench_embedded import _py_spy
from bench.compare import extras
from bench.compare.jobyard import JobyardSqlite
from bench.threads import switches_by_name, thread_switches


def workflow(
    nodes: int, concurrency: int, *, by_thread: bool = False, profile: Path | None = None
) -> str:
    workdir = Path(tempfile.mkdtemp())
    database = workdir / "jobs.db"
    env: dict[str, str | None] = {
        "JOBYARD_CONCURRENCY": str(concurrency),
        "JOBYARD_POLL_INTERVAL": "0.05",
    }
    config = wide_config(nodes, workdir)
    srv = Server(database_url=f"sqlite:///{database}", workdir=workdir, config=config, env=env)
    srv.start()
    assert srv.proc is not None
    try:
        server = psutil.Process(srv.proc.pid)
        spy = _py_spy(server.pid, profile, threads=True) if profile else None
        switched, used = thread_switches(server.pid), sum(server.cpu_times()[:2])
        started = time.perf_counter()
        response = srv.client.post("/api/v1/workflows/wide/runs", json={})
        response.raise_for_status()
        run_id = response.json()["id"]

        def done() -> bool:
            runs = srv.client.get("/api/v1/workflow-runs", params={"workflow": "wide"}).json()
            state: str = next(r["state"] for r in runs["items"] if r["id"] == run_id)
            return state == "succeeded"

        wait_for(done, timeout=3600, interval=0.2)
        took = time.perf_counter() - started
        used = sum(server.cpu_times()[:2]) - used
        now = thread_switches(server.pid)
        voluntary, forced = (
            sum(counts[i] for counts in now.values())
            - sum(counts[i] for counts in switched.values())
            for i in (0, 1)
        )
        threads = "\n" + switches_by_name(server.pid, switched, now, nodes) if by_thread else ""
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # it writes its file then
            spy.wait(60)
    finally:
        srv.stop()
    return (
        f"{nodes} nodes, {concurrency} slots: {nodes / took:.0f} jobs/s, "
        f"{1000 * used / nodes:.2f} ms of server CPU a job ({used / took:.2f} of a core); "
        f"switches a job: {voluntary / nodes:.1f} voluntary, {forced / nodes:.1f} forced; "
        + _node_times(database)
        + threads
    )


def chain(nodes: int, concurrency: int) -> str:
    """A chain of ``nodes`` no-op Python nodes: how long each waits for its upstream's
    end, from that end's commit to its own claim's (both stamped in the database)."""
    workdir = Path(tempfile.mkdtemp())
    database = workdir / "jobs.db"
    (workdir / "bench_jobs.py").write_text("def noop():\n    pass\n")
    links = "\n".join(
        f"      n{i}: {{type: noop, depends_on: [n{i - 1}]}}" for i in range(1, nodes)
    )
    config = workdir / "jobyard.yaml"
    config.write_text(
        "job_types:\n  noop: {python: 'bench_jobs:noop'}\n"
        f"workflows:\n  chain:\n    nodes:\n      n0: {{type: noop}}\n{links}\n"
    )
    env: dict[str, str | None] = {"JOBYARD_CONCURRENCY": str(concurrency)}
    srv = Server(database_url=f"sqlite:///{database}", workdir=workdir, config=config, env=env)
    srv.start()
    try:
        run_id = srv.client.post("/api/v1/workflows/chain/runs", json={}).json()["id"]

        def done() -> bool:
            run = srv.client.get(f"/api/v1/workflow-runs/{run_id}").json()
            return bool(run["state"] == "succeeded")

        wait_for(done, timeout=3600, interval=0.2)
    finally:
        srv.stop()
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT started_at, finished_at FROM jobs ORDER BY id").fetchall()
    times = [(_epoch(started), _epoch(finished)) for started, finished in rows]
    waits = [1000 * (nxt[0] - prev[1]) for prev, nxt in itertools.pairwise(times)]
    cut = statistics.quantiles(waits, n=100)
    return (
        f"chain of {nodes} nodes, {concurrency} slots: {nodes / (times[-1][1] - times[0][0]):.0f}"
        f" nodes/s; upstream's end → next claim p50 / p90 / p99 "
        f"{cut[49]:.1f} / {cut[89]:.1f} / {cut[98]:.1f} ms"
    )


def _node_times(database: Path) -> str:
    """The middle nodes' rate and their claim → stored end times, from their rows."""
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT started_at, finished_at FROM jobs WHERE node NOT IN ('first', 'last')"
        ).fetchall()
    starts, ends = zip(*((_epoch(s), _epoch(f)) for s, f in rows), strict=True)
    cycle = statistics.quantiles([1000 * (f - s) for s, f in zip(starts, ends, strict=True)], n=100)
    rate = len(rows) / (max(ends) - min(starts))
    return (
        f"middle nodes {rate:.0f} jobs/s, claim → stored end p50 / p90 / p99 "
        f"{cycle[49]:.1f} / {cycle[89]:.1f} / {cycle[98]:.1f} ms"
    )


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def commands(jobs: int, concurrency: int) -> str:
    system = JobyardSqlite(Path(tempfile.mkdtemp()), "127.0.0.1:9")  # no body stamps here
    system.prepare()
    system.serve("serve", f"sqlite:///{system.db}", "--concurrency", str(concurrency))
    try:
        rate = extras.commands(system, jobs)
    finally:
        system.close_client()
        system.stop()
    floor = extras.spawn_floor(jobs)
    return (
        f"{concurrency} slots: {rate:.0f} /bin/true jobs/s; "
        f"spawn floor {floor:.0f}/s; x{rate / floor:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["workflow", "chain", "commands"])
    parser.add_argument("--nodes", type=int, default=2000, help="workflow: its nodes")
    parser.add_argument("--jobs", type=int, default=500, help="commands: how many")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16])
    parser.add_argument(
        "--by-thread",
        action="store_true",
        help="workflow: the switches by thread (names from py-spy dump, if on the PATH)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="workflow: py-spy's raw stacks (GIL held, by thread) to this file; "
        "bench/stacks.py sums them up",
    )
    args = parser.parse_args()
    for slots in args.concurrency:
        if args.mode == "workflow":
            report = workflow(args.nodes, slots, by_thread=args.by_thread, profile=args.profile)
            print(report, flush=True)
        elif args.mode == "chain":
            print(chain(args.nodes, slots), flush=True)
        else:
            print(commands(args.jobs, slots), flush=True)


if __name__ == "__main__":
    main()
