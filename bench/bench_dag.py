"""Advancing a wide DAG (1 → N-2 in parallel → 1): cost per edge, and a whole run.

``engine`` mode drives the dependency engine directly (no processes): it
creates the run, then ends the jobs wave by wave and settles them, ``--batch``
ended jobs per settle call (1: each job alone; more: as a writer that commits
several ends at once calls it), counting the SQL statements, the time and the
CPU time. If advancing were O(nodes²), the statements per edge would grow with
N; they stay flat.

``server`` mode starts a real ``jobyard serve`` with a Python no-op job type and
times a whole workflow run from start to ``succeeded``, then what showing the ended run
costs (``view_ms``: ``GET /api/v1/workflow-runs/{id}``); ``--threads`` also prints
the server's CPU per job by thread (names from ``py-spy dump`` when it is installed).

    .venv/bin/python bench/bench_dag.py engine --nodes 1000 10000 --database sqlite
    .venv/bin/python bench/bench_dag.py engine --nodes 10000 --database sqlite --batch 8
    .venv/bin/python bench/bench_dag.py server --nodes 1000 --database sqlite
    .venv/bin/python bench/bench_dag.py server --nodes 2000 --threads
    .venv/bin/python bench/bench_dag.py resume --nodes 1000

``resume`` mode times resuming a stopped run whose every node was cancelled (no
worker runs): each node made again, in order.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from jobyard.models import JobUpdate, NewJob

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import Server, wait_for

from bench.bench_events import scratch_database
from bench.bench_statements import counting
from bench.threads import per_thread, thread_times
from jobyard.dependencies import Dependencies
from jobyard.models import JobSpec
from jobyard.states import JobState
from jobyard.store import Store

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def engine(nodes: int, url: str, batch: int = 1) -> dict[str, Any]:
    store = Store(url)
    store.migrate()
    statements = counting(store)  # SQLite: its BEGINs too (bench_statements)
    deps = Dependencies(store, clock=lambda: NOW)
    width = nodes - 2
    new = [NewJob("noop", {}, JobSpec(argv=["true"]), "default", 0, JobState.QUEUED)]
    new += [NewJob("noop", {}, JobSpec(argv=["true"]), "default", 0, JobState.WAITING)] * (
        width + 1
    )
    edges = [(i, 0) for i in range(1, width + 1)] + [(width + 1, i) for i in range(1, width + 1)]
    started = time.perf_counter()
    _, jobs = store.runs.add_workflow_run("wide", {}, "bench", new, edges, NOW)
    created = time.perf_counter() - started
    statements[0] = 0
    started, cpu = time.perf_counter(), time.process_time()
    waves = [[jobs[0]], jobs[1:-1], [jobs[-1]]]  # each wave is ready when the one before ended
    for wave in waves:
        for start in range(0, len(wave), batch):  # ``batch`` ends, then one settle
            ended = [job.id for job in wave[start : start + batch]]
            for job_id in ended:
                update = JobUpdate(
                    job_id, frozenset({JobState.QUEUED}), {"state": JobState.SUCCEEDED}
                )
                assert store.jobs.update_job(update, NOW) is not None, job_id
            deps.settle(ended)
    advanced, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.close()
    return {
        "nodes": nodes,
        "edges": len(edges),
        "create_s": round(created, 2),
        "batch": batch,
        "advance_s": round(advanced, 2),
        "advance_cpu_s": round(cpu, 2),
        "advance_us_per_edge": round(1e6 * advanced / len(edges)),
        "statements_per_edge": round(statements[0] / len(edges), 2),
    }


def wide_config(nodes: int, workdir: Path) -> Path:
    """A configuration with the workflow ``wide`` (1 → ``nodes`` - 2 → 1) of no-op jobs."""
    (workdir / "bench_jobs.py").write_text("def noop():\n    pass\n")
    middle = "\n".join(f"      m{i}: {{type: noop, depends_on: [first]}}" for i in range(nodes - 2))
    joined = ", ".join(f"m{i}" for i in range(nodes - 2))
    config = workdir / "jobyard.yaml"
    config.write_text(
        "job_types:\n  noop: {python: 'bench_jobs:noop'}\n"
        f"workflows:\n  wide:\n    nodes:\n      first: {{type: noop}}\n{middle}\n"
        f"      last: {{type: noop, depends_on: [{joined}]}}\n"
    )
    return config


def resume(nodes: int, url: str, workdir: Path) -> dict[str, Any]:
    """Start a run with no worker, stop it (every node is cancelled), and time its resume
    (every node made again, in order)."""
    config = wide_config(nodes, workdir)
    srv = Server(database_url=url, workdir=workdir, config=config, args=["--no-worker"]).start()
    try:
        run_id = srv.client.post("/api/v1/workflows/wide/runs", json={}).json()["id"]
        srv.client.post(f"/api/v1/workflow-runs/{run_id}/stop").raise_for_status()
        started = time.perf_counter()
        resumed = srv.client.post(f"/api/v1/workflow-runs/{run_id}/resume", timeout=3600)
        resumed.raise_for_status()
        took = time.perf_counter() - started
    finally:
        srv.stop()
    return {"nodes": nodes, "resume_s": round(took, 2)}


def server(
    nodes: int, url: str, workdir: Path, concurrency: int = 4, *, threads: bool = False
) -> dict[str, Any]:
    config = wide_config(nodes, workdir)
    env = {"JOBYARD_CONCURRENCY": str(concurrency), "JOBYARD_POLL_INTERVAL": "0.05"}
    srv = Server(database_url=url, workdir=workdir, config=config, env=env).start()
    assert srv.proc is not None
    try:
        before = thread_times(srv.proc.pid) if threads else {}
        started = time.perf_counter()
        response = srv.client.post("/api/v1/workflows/wide/runs", json={})
        response.raise_for_status()
        run_id = response.json()["id"]

        def done() -> bool:  # the run list: it does not load the 10,000 nodes each time
            runs = srv.client.get("/api/v1/workflow-runs", params={"workflow": "wide"}).json()
            state: str = next(r["state"] for r in runs["items"] if r["id"] == run_id)
            assert state in ("running", "succeeded"), state
            return state == "succeeded"

        wait_for(done, timeout=3600, interval=0.5)
        total = time.perf_counter() - started
        if threads:
            print(per_thread(srv.proc.pid, before, thread_times(srv.proc.pid), nodes))
        view_ms, view_cpu_ms = _view(srv, run_id)
    finally:
        srv.stop()
    return {
        "nodes": nodes,
        "concurrency": concurrency,
        "run_s": round(total, 1),
        "jobs_per_s": round(nodes / total),
        "view_ms": view_ms,
        "view_server_cpu_ms": view_cpu_ms,
    }


def _view(srv: Server, run_id: int, times: int = 10) -> tuple[float, float]:
    """What showing the ended run costs (``GET /api/v1/workflow-runs/{id}``, every node's
    job, what ``runs --wait`` polls): ms per request, and the server's CPU ms."""
    assert srv.proc is not None
    server = psutil.Process(srv.proc.pid)
    srv.client.get(f"/api/v1/workflow-runs/{run_id}").raise_for_status()  # warm
    before, started = sum(server.cpu_times()[:2]), time.perf_counter()
    for _ in range(times):
        srv.client.get(f"/api/v1/workflow-runs/{run_id}").raise_for_status()
    took, used = time.perf_counter() - started, sum(server.cpu_times()[:2]) - before
    return round(1000 * took / times, 1), round(1000 * used / times, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["engine", "server", "resume"])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--database", choices=["sqlite", "postgres", "mariadb"], default="sqlite")
    parser.add_argument("--concurrency", type=int, default=4, help="server: worker slots")
    parser.add_argument("--batch", type=int, default=1, help="engine: ended jobs per settle call")
    parser.add_argument("--threads", action="store_true", help="server: CPU per job by thread")
    args = parser.parse_args()
    for nodes in args.nodes:
        with tempfile.TemporaryDirectory() as tmp:
            url = scratch_database(args.database, Path(tmp))
            if args.mode == "engine":
                result = engine(nodes, url, args.batch)
            elif args.mode == "resume":
                result = resume(nodes, url, Path(tmp))
            else:
                result = server(nodes, url, Path(tmp), args.concurrency, threads=args.threads)
        print(
            f"{args.mode} database={args.database} "
            + " ".join(f"{k}={v}" for k, v in result.items())
        )


if __name__ == "__main__":
    main()
