"""Time from ``Runner.start`` to the Result: a Python no-op on a warm pool, and ``/bin/true``.

.venv/bin/python bench/bench_runner.py [rounds]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jobyard.models import JobSpec
from jobyard.runner.local import Runner


class NullSink:
    def log(self, stream: str, line: str) -> None: ...
    def progress(self, fraction: float | None, message: str | None) -> None: ...
    def metric(self, name: str, value: float) -> None: ...
    def details(self, data: dict[str, Any]) -> None: ...
    def output(self, nbytes: int) -> None: ...
    def ended(self) -> None: ...


def timed(runner: Runner, spec: JobSpec) -> float:
    started = time.perf_counter()
    execution = runner.start(1, "bench", spec, NullSink())
    while (result := execution.wait(0.1)) is None:
        pass
    elapsed = time.perf_counter() - started
    assert result.succeeded, result
    return elapsed


def report(name: str, times: list[float]) -> None:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(f"{name:22} median {statistics.median(ms):6.2f} ms   p95 {p95:6.2f} ms   n={len(ms)}")


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bench_jobs.py").write_text("def noop():\n    pass\n")
        runner = Runner(python_pool=2, python_path=[tmp], preload=["bench_jobs"])
        try:
            deadline = time.monotonic() + 30
            while runner.pool.stats()["idle"] < 2 and time.monotonic() < deadline:
                time.sleep(0.01)  # let the pool warm up: we measure warm starts
            python = JobSpec(python="bench_jobs:noop")
            command = JobSpec(argv=["/bin/true"])
            timed(runner, python), timed(runner, command)
            report("python no-op (warm)", [timed(runner, python) for _ in range(rounds)])
            report("command /bin/true", [timed(runner, command) for _ in range(rounds)])
        finally:
            runner.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
