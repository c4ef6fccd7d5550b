"""Scale-out on PostgreSQL (or MariaDB): dispatch and control latency, throughput, connections.

API-only nodes (``jobyard serve --no-worker``) and ``jobyard worker`` processes
run as subprocesses on a scratch database (see ``tests/cluster.py``); every
process names its connections (``application_name``) so that
``pg_stat_activity`` tells how many each one holds.

    .venv/bin/python bench/bench_cluster.py dispatch --workers 2 --jobs 200
    .venv/bin/python bench/bench_cluster.py control --workers 2 --api-nodes 2 --rounds 100
    .venv/bin/python bench/bench_cluster.py throughput --workers 1 2 4 --jobs 3000
    .venv/bin/python bench/bench_cluster.py dispatch --database mariadb   # polling, no NOTIFY
    .venv/bin/python bench/bench_cluster.py wakeups --workers 2 --jobs 500

dispatch: one no-op job at a time on an idle cluster (random gaps); submit → ``started_at``.
control: pause, resume (one running job, over and over) and kill (a new job
each time), issued on one API node and watched on another until the state shows.
throughput: the jobs are queued first, then N workers x ``--concurrency`` start;
claims/s and jobs/s from the stored ``started_at``/``finished_at``.
wakeups (PostgreSQL): the workers' CPU and the transactions a submit costs when no
worker can take its job (a paused queue, a tag none has), beside jobs they take.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import case, create_engine, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.cluster import Cluster
from tests.harness import Server, wait_for

from jobyard.store.tables import jobs as jobs_table

ADMIN = {
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}
TERMINAL = ("succeeded", "failed", "killed")


@contextmanager
def scratch_database(kind: str) -> Iterator[tuple[str, str]]:
    """A new database on the local server, dropped afterwards: (url, name)."""
    name = f"jobyard_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN[kind], isolation_level="AUTOCOMMIT")
    postgres = kind == "postgres"
    with admin.connect() as conn:
        conn.execute(
            text(f"CREATE DATABASE {name}" + ("" if postgres else " CHARACTER SET utf8mb4"))
        )
    try:
        yield ADMIN[kind].rsplit("/", 1)[0] + f"/{name}", name
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if postgres else ""))
            )
        admin.dispose()


@contextmanager
def cluster(kind: str, workers: int, concurrency: int, api_nodes: int = 1) -> Iterator[Cluster]:
    with tempfile.TemporaryDirectory() as tmp, scratch_database(kind) as (url, _):
        env = {"JOBYARD_POLL_INTERVAL": "0.5"}  # the default: NOTIFY does the waking
        with Cluster(url, Path(tmp), workers, concurrency, api_nodes, env=env) as running:
            yield running


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[max(int(len(ordered) * 0.99) - 1, 0)]
    return (
        f"n={len(values)} p50 {1000 * statistics.median(ordered):.1f} ms  "
        f"p99 {1000 * p99:.1f} ms  max {1000 * ordered[-1]:.1f} ms"
    )


def at(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def poll(server: Server, job_id: int, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        job = server.job(job_id)
        if done(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} stuck: {job}")
        time.sleep(0.002)


# -- dispatch ---------------------------------------------------------------
def dispatch(args: argparse.Namespace) -> None:
    with cluster(args.database, args.workers, args.concurrency) as running:
        api = running.api
        from_created, from_sent = [], []
        for _ in range(args.jobs):
            # An idle cluster: every worker waits again. The gap is random so that,
            # where workers poll (MariaDB), a submission does not keep the same phase.
            time.sleep(random.uniform(0.05, 0.55))
            sent = time.time()
            job = api.submit("noop")
            job = poll(api, job["id"], lambda j: j["state"] in TERMINAL)
            from_created.append(at(job["started_at"]) - at(job["created_at"]))
            from_sent.append(at(job["started_at"]) - sent)
    print(f"dispatch on {args.database}, {args.workers} workers x {args.concurrency}, idle cluster")
    print(f"  created_at → started_at   {ms(from_created)}")
    print(f"  client POST → started_at  {ms(from_sent)}")


# -- control ----------------------------------------------------------------
def control(args: argparse.Namespace) -> None:
    with cluster(args.database, args.workers, args.concurrency, args.api_nodes) as running:
        nodes = running.apis
        took: dict[str, list[float]] = defaultdict(list)

        def act(round_: int, job_id: int, action: str, state: str) -> None:
            issuer, watcher = nodes[round_ % len(nodes)], nodes[(round_ + 1) % len(nodes)]
            started = time.perf_counter()
            response = issuer.act(job_id, action)
            assert response.status_code in (200, 202), response.text
            poll(watcher, job_id, lambda j: j["state"] == state)
            took[action].append(time.perf_counter() - started)

        job = running.api.submit("sleep", args={"seconds": 3600})
        running.api.wait_state(job["id"], "running")
        for round_ in range(args.rounds):
            act(round_, job["id"], "pause", "paused")
            act(round_, job["id"], "resume", "running")
        running.api.act(job["id"], "kill")
        for round_ in range(args.kills):
            job = running.api.submit("sleep", args={"seconds": 3600})
            running.api.wait_state(job["id"], "running")
            act(round_, job["id"], "kill", "killed")
    print(
        f"control on {args.database}, {args.api_nodes} API nodes, {args.workers} workers: "
        "request → state visible"
    )
    for action, values in took.items():
        print(f"  {action:7} {ms(values)}")


# -- throughput -------------------------------------------------------------
def connections(kind: str, db: str) -> dict[str, int]:
    """Connections to ``db`` by process name (MariaDB cannot tell them apart: ``all``)."""
    query = text(
        "SELECT application_name, count(*) FROM pg_stat_activity "
        "WHERE datname = :db GROUP BY application_name"
        if kind == "postgres"
        else "SELECT 'all', count(*) FROM information_schema.processlist WHERE db = :db"
    )
    engine = create_engine(ADMIN[kind])
    try:
        with engine.connect() as conn:
            return {name or "?": int(n) for name, n in conn.execute(query, {"db": db})}
    finally:
        engine.dispose()


def backend_cpu(db: str) -> float:
    """CPU seconds of the PostgreSQL backends serving ``db`` (those still connected)."""
    total = 0.0
    for proc in psutil.process_iter(["cmdline", "cpu_times"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith("postgres:") and f" {db} " in cmdline:
            times = proc.info["cpu_times"]
            total += times.user + times.system
    return total


def process_cpu(popen: Any) -> float:
    try:
        times = psutil.Process(popen.pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system + times.children_user + times.children_system)


def throughput_once(kind: str, workers: int, concurrency: int, jobs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, scratch_database(kind) as (url, db):
        labels = kind == "postgres"
        running = Cluster(url, Path(tmp), workers=0, label_connections=labels).start()
        try:
            running.concurrency = concurrency
            running.submit_batch([{"type": "noop"}] * jobs)
            api_cpu = process_cpu(running.api.proc)
            peak: dict[str, int] = defaultdict(int)
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    for name, count in connections(kind, db).items():
                        peak[name] = max(peak[name], count)
                    done.wait(0.2)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            for index in range(workers):
                running.add_worker(f"worker-{index + 1}")
            ended = lambda: running.count(state=",".join(TERMINAL)) >= jobs  # noqa: E731
            wait_for(ended, timeout=1800, interval=0.25, what="every job to end")
            done.set()
            sampler.join()
            idle = connections(kind, db)
            worker_cpu = sum(process_cpu(w.proc) for w in running.procs)
            api_cpu = process_cpu(running.api.proc) - api_cpu
            db_cpu = backend_cpu(db)
            with running.store.engine.connect() as conn:
                first, last_start, last_end, failed = conn.execute(
                    select(
                        func.min(jobs_table.c.started_at),
                        func.max(jobs_table.c.started_at),
                        func.max(jobs_table.c.finished_at),
                        func.sum(case((jobs_table.c.state != "succeeded", 1), else_=0)),
                    )
                ).one()
        finally:
            running.stop()
    claiming = (last_start - first).total_seconds()
    span = (last_end - first).total_seconds()
    workers_peak = [peak[f"worker-{i + 1}"] for i in range(workers)]
    workers_idle = [idle.get(f"worker-{i + 1}", 0) for i in range(workers)]
    print(
        f"{workers} workers x {concurrency}: {jobs} jobs ({failed} not succeeded) in {span:.1f} s: "
        f"{jobs / claiming:.0f} claims/s, {jobs / span:.0f} jobs/s"
    )
    if kind == "postgres":
        print(
            f"  connections per worker: peak {max(workers_peak)}, idle {max(workers_idle)}; "
            f"API node peak {peak.get('api-1', 0)}, idle {idle.get('api-1', 0)}"
        )
    else:
        print(f"  connections in all: peak {peak['all']}, idle {idle.get('all', 0)}")
    print(
        f"  CPU per job: workers {1000 * worker_cpu / jobs:.1f} ms (with their job processes), "
        f"API node {1000 * api_cpu / jobs:.1f} ms, "
        + (f"PostgreSQL backends ~{1000 * db_cpu / jobs:.1f} ms" if kind == "postgres" else "")
    )


# -- wake-ups ---------------------------------------------------------------
WAKE_CASES = {
    "held": ({"type": "noop", "hold": True}, None),  # a submit that wakes no one
    "paused queue": ({"type": "echo", "args": {"text": "x"}, "queue": "limited"}, "limited"),
    "tag no worker has": ({"type": "tagged"}, None),
    "queued, run": ({"type": "noop"}, None),  # last: the workers run them, then idle
}


def wakeups(args: argparse.Namespace) -> None:
    """The workers' CPU and the database's transactions a submit costs when no worker
    can take the job (its queue paused, a tag none has), beside one they run."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_database("postgres") as (url, db),
        Cluster(url, Path(tmp), args.workers, args.concurrency) as running,
    ):
        print(f"wake-ups on postgres, {args.workers} workers x {args.concurrency}, "
              f"{args.jobs} submits a case, one at a time")  # fmt: skip
        for case, (body, paused) in WAKE_CASES.items():
            if paused:  # and left paused: its jobs must not run during the cases after it
                running.api.client.post(f"/api/v1/queues/{paused}/pause").raise_for_status()
            cpu, per = _wake_case(running, db, body, args.jobs)
            print(f"  {case:18} workers' CPU {cpu:6.3f} ms a submit (idle rate taken off), "
                  f"{per:5.2f} transactions of the database a submit (the API's too)")  # fmt: skip


def _wake_case(running: Cluster, db: str, body: dict[str, Any], jobs: int) -> tuple[float, float]:
    """ms of the workers' CPU and transactions of the database, a submit of ``body``."""

    def workers() -> float:
        return sum(process_cpu(worker.proc) for worker in running.procs)

    time.sleep(1)  # settled: what follows is the submits' own cost
    cpu, xacts, started = workers(), transactions(db), time.perf_counter()
    for _ in range(jobs):
        running.api.client.post("/api/v1/jobs", json=body).raise_for_status()
    wait_for(lambda: not _busy(running), 120, interval=0.5, what="the jobs it runs")
    time.sleep(1)  # the wake-ups they caused are over
    took = time.perf_counter() - started
    used, count = workers() - cpu, transactions(db) - xacts
    return 1000 * (used - idle_cpu(workers, took)) / jobs, count / jobs


def _busy(running: Cluster) -> bool:
    """Whether a worker runs a job, or one it can take waits."""
    page = running.api.client.get("/api/v1/jobs", params={"state": "queued,running"}).json()
    return any(job["type"] == "noop" for job in page["items"]) or any(
        job["state"] == "running" for job in page["items"]
    )


def transactions(db: str) -> int:
    """Committed and rolled back transactions of ``db`` so far (pg_stat_database)."""
    engine = create_engine(ADMIN["postgres"])
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            query = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = :db"
            return int(conn.execute(text(query), {"db": db}).scalar_one())
    finally:
        engine.dispose()


def idle_cpu(cpu: Callable[[], float], seconds: float) -> float:
    """The CPU ``cpu()`` grows by in ``seconds`` of an idle cluster (its polls, heartbeats)."""
    before = cpu()
    time.sleep(2)
    return (cpu() - before) * seconds / 2


def throughput(args: argparse.Namespace) -> None:
    for workers in args.workers:
        throughput_once(args.database, workers, args.concurrency, args.jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("dispatch")
    one.add_argument("--workers", type=int, default=2)
    one.add_argument("--jobs", type=int, default=200)
    two = sub.add_parser("control")
    two.add_argument("--workers", type=int, default=2)
    two.add_argument("--api-nodes", type=int, default=2)
    two.add_argument("--rounds", type=int, default=100)
    two.add_argument("--kills", type=int, default=50)
    three = sub.add_parser("throughput")
    three.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    three.add_argument("--jobs", type=int, default=3000)
    four = sub.add_parser("wakeups")
    four.add_argument("--workers", type=int, default=2)
    four.add_argument("--jobs", type=int, default=500)
    for each in (one, two, three, four):
        each.add_argument("--concurrency", type=int, default=4)
        each.add_argument("--database", choices=sorted(ADMIN), default="postgres")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    commands = {"dispatch": dispatch, "control": control, "throughput": throughput}
    commands["wakeups"] = wakeups
    commands[args.what](args)


if __name__ == "__main__":
    main()
