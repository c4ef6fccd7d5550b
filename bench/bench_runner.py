"""The runner alone (no database): Python jobs on a warm pool, and ``/bin/true`` commands.

.venv/bin/python bench/bench_runner.py [rounds]

- Python no-op: ``Runner.start`` → Result, and ``Runner.start`` → the first line of the
  job's body (the body returns ``time.time()`` as a metric, compared with the parent's
  clock taken just before ``start``);
- ``/bin/true``: ``Runner.start`` → Result, one job after the other, against the floor
  of this machine: ``os.posix_spawn`` (new session) + ``waitpid`` in a loop, in one
  Python process;
- one and two slots kept busy with Python no-ops by as many threads, on a pool of that
  size (a worker's default): jobs/s, and the children started per job (0 on a warm pool).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobyard.models import JobSpec
from jobyard.runner.local import Runner

JOBS = """
import time


def noop():
    pass


def stamp():
    return {"body_at": time.time()}
"""


class NullSink:
    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}

    def log(self, stream: str, line: str) -> None: ...
    def progress(self, fraction: float | None, message: str | None) -> None: ...
    def metric(self, name: str, value: float) -> None:
        self.metrics[name] = value

    def details(self, data: dict[str, Any]) -> None: ...
    def output(self, nbytes: int) -> None: ...
    def ended(self) -> None: ...

    def controlled(self, control: str, error: str | None) -> None: ...

    def record(self, data: dict[str, Any]) -> bool:
        return True


def run(runner: Runner, spec: JobSpec) -> NullSink:
    sink = NullSink()
    execution = runner.start(1, "bench", spec, sink)
    while (result := execution.wait(0.1)) is None:
        pass
    assert result.succeeded, result
    return sink


def timed(runner: Runner, spec: JobSpec) -> float:
    started = time.perf_counter()
    run(runner, spec)
    return time.perf_counter() - started


def to_body(runner: Runner, spec: JobSpec) -> float:
    started = time.time()
    return run(runner, spec).metrics["body_at"] - started


def report(name: str, times: list[float]) -> None:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(f"{name:30} median {statistics.median(ms):6.3f} ms   p95 {p95:6.3f} ms   n={len(ms)}")


def rate(name: str, rounds: int, one: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        one()
    per_second = rounds / (time.perf_counter() - started)
    print(f"{name:30} {per_second:8.0f} jobs/s")
    return per_second


def busy_slots(slots: int, python_path: str, spec: JobSpec, rounds: int) -> None:
    """``slots`` threads run jobs back to back on a pool of ``slots``, as a worker would."""
    runner = Runner(python_pool=slots, python_path=[python_path], preload=["bench_jobs"])
    try:
        assert runner.pool.wait_ready(30), "the pool did not start"
        spawned = runner.pool.spawned

        def slot() -> None:
            for _ in range(rounds):
                run(runner, spec)

        threads = [threading.Thread(target=slot) for _ in range(slots)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        per_second = slots * rounds / (time.perf_counter() - started)
        per_job = (runner.pool.spawned - spawned) / (slots * rounds)
    finally:
        runner.close()
    name = f"python no-op, {slots} slot(s) busy"
    print(f"{name:30} {per_second:8.0f} jobs/s   {per_job:.2f} new children/job")


def spawn_true() -> None:
    pid = os.posix_spawn("/bin/true", ["/bin/true"], os.environ, setsid=True)
    os.waitpid(pid, 0)


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bench_jobs.py").write_text(JOBS)
        runner = Runner(python_pool=2, python_path=[tmp], preload=["bench_jobs"])
        try:
            assert runner.pool.wait_ready(30), "the pool did not start"
            noop, stamp = JobSpec(python="bench_jobs:noop"), JobSpec(python="bench_jobs:stamp")
            command = JobSpec(argv=["/bin/true"])
            timed(runner, noop), timed(runner, command)
            report("python no-op start→result", [timed(runner, noop) for _ in range(rounds)])
            report("python start→body", [to_body(runner, stamp) for _ in range(rounds)])
            report("command /bin/true", [timed(runner, command) for _ in range(rounds)])
            floor = rate("floor posix_spawn+waitpid", rounds, spawn_true)
            ours = rate("runner /bin/true", rounds, lambda: run(runner, command))
            floor = (floor + rate("floor (again)", rounds, spawn_true)) / 2
            print(f"{'runner / floor':30} {ours / floor:8.2f}")
        finally:
            runner.close()
        busy_slots(1, tmp, noop, rounds)
        busy_slots(2, tmp, noop, rounds)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
