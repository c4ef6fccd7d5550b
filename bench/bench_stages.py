"""Where a job's submit → start latency goes: the stages of each job, stamped inside jobyard.

Starts the side-by-side suite's jobyard (``--database sqlite``: ``serve --concurrency
2``; ``postgres``: an API node and two workers) with ``bench/stage_hooks`` first on its
``PYTHONPATH``: that ``sitecustomize`` wraps the functions a submitted job passes
through (the request's arrival in uvicorn, the credential check, the insert, the
hand-off to the worker, the claim, the run's thread, the send to the Python child,
the answer) and stamps each call with ``time.time()``. One client submits
``--jobs`` no-op Python jobs one at a time, each after a short random pause on an
idle system, as the suite's latency phase does, and hears each body start (its UDP
stamp). Prints, for each stage, how long after the client's send it came (median,
p90) and which thread ran it, in the order of the medians, then the steps between
them: where the latency goes, and which step to work on.

    .venv/bin/python bench/bench_stages.py --jobs 300
    .venv/bin/python bench/bench_stages.py --jobs 300 --database postgres

The stamps cost a few microseconds each (one ``write``); about a dozen a job.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.compare.jobyard import Jobyard, JobyardPostgres, JobyardSqlite
from bench.compare.stamps import Stamps

ROOT = Path(__file__).resolve().parent.parent
HOOKS = ROOT / "bench" / "stage_hooks"
GAP = (0.005, 0.015)  # seconds between one job's start and the next submit
SENT, ANSWERED, BODY = "client.sent", "client.answered", "body.started"


def run(database: str, jobs: int, workdir: Path) -> list[dict[str, tuple[float, str]]]:
    """Each job's stages: ``{stage: (seconds after the client's send, thread)}``."""
    stamps_file = workdir / "stages.txt"
    stamps = Stamps()
    kind: type[Jobyard] = JobyardSqlite if database == "sqlite" else JobyardPostgres
    system = kind(workdir, stamps.address)
    path = os.pathsep.join(filter(None, [str(HOOKS), str(ROOT), os.environ.get("PYTHONPATH")]))
    system.env |= {"PYTHONPATH": path, "JOBYARD_STAGES": str(stamps_file)}
    system.prepare()
    try:
        system.start()
        for key in range(-20, 0):  # warm-up: the Python children, the caches
            system.submit(key)
            stamps.wait([key], 60)
        time.sleep(0.5)
        stamps_file.write_bytes(b"")
        client: list[tuple[float, float, float]] = []
        for key in range(jobs):
            time.sleep(random.uniform(*GAP))
            sent = time.time()
            system.submit(key)
            answered = time.time()
            client.append((sent, answered, stamps.wait([key], 60)))
        time.sleep(0.2)  # the last job's end and its stamps
    finally:
        system.stop()
        system.cleanup()
        stamps.close()
    return _by_job(client, _read(stamps_file))


def _read(path: Path) -> list[tuple[float, str, str]]:
    stamped = []
    for line in path.read_text().splitlines():
        at, stage, thread = line.split(" ", 2)
        stamped.append((float(at), stage, _thread_kind(thread)))
    return sorted(stamped)


def _thread_kind(name: str) -> str:
    """``worker-<host>-<pid>`` → ``worker``; ``AnyIO worker thread`` stays as it is."""
    if name.startswith(("worker-", "job-", "pychild-")):
        return name.split("-", 1)[0]
    return name


def _by_job(
    client: list[tuple[float, float, float]], stamped: list[tuple[float, str, str]]
) -> list[dict[str, tuple[float, str]]]:
    """Each job's first stamp of each stage between its send and the next job's send."""
    jobs = []
    at = 0
    for index, (sent, answered, body) in enumerate(client):
        until = client[index + 1][0] if index + 1 < len(client) else float("inf")
        stages = {SENT: (0.0, "client"), ANSWERED: (answered - sent, "client")}
        stages[BODY] = (body - sent, "child")
        while at < len(stamped) and stamped[at][0] < sent:
            at += 1
        while at < len(stamped) and stamped[at][0] < until:
            when, stage, thread = stamped[at]
            stages.setdefault(stage, (when - sent, thread))
            at += 1
        jobs.append(stages)
    return jobs


def report(jobs: list[dict[str, tuple[float, str]]]) -> str:
    offsets: dict[str, list[float]] = defaultdict(list)
    threads: dict[str, Counter[str]] = defaultdict(Counter)
    for stages in jobs:
        for stage, (offset, thread) in stages.items():
            offsets[stage].append(offset)
            threads[stage][thread] += 1
    medians = {stage: statistics.median(values) for stage, values in offsets.items()}
    order = sorted(medians, key=medians.__getitem__)
    lines = [
        f"{len(jobs)} jobs; ms after the client's send (p50, p90), the thread, how many had it:"
    ]
    for stage in order:
        values = sorted(offsets[stage])
        p90 = values[int(0.9 * (len(values) - 1))]
        thread = threads[stage].most_common(1)[0][0]
        lines.append(
            f"  {stage:22s} {1000 * medians[stage]:7.2f} {1000 * p90:7.2f}  "
            f"{thread:24s} {len(values)}"
        )
    lines.append("steps (p50 of each job's difference, where both stamps are there):")
    for before, after in pairwise(order):
        steps = [
            stages[after][0] - stages[before][0]
            for stages in jobs
            if before in stages and after in stages
        ]
        if steps:
            lines.append(f"  {before:22s} → {after:22s} {1000 * statistics.median(steps):7.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        print(report(run(args.database, args.jobs, Path(workdir))))


if __name__ == "__main__":
    main()
