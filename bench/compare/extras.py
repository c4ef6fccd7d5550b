"""What only jobyard is measured on: batch submits, command jobs, control, the spawn floor.

These run in session C (the queue of the no-op jobs paused, or no worker yet):
``bench-true`` and ``bench-sleep`` jobs have queues of their own.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from tests.harness import wait_for

from bench.compare.jobyard import Jobyard, JobyardPostgres
from bench.compare.system import System
from bench.compare.workload import Plan

COMMAND_JOBS = 500  # /bin/true jobs per round, at most


def jobyard_extras(system: System, plan: Plan) -> dict[str, Any]:
    assert isinstance(system, Jobyard)
    result: dict[str, Any] = {"batch_per_s": batch(system, plan.jobs)}
    if isinstance(system, JobyardPostgres):
        system.start_workers()  # the no-op jobs stay queued: their queue is paused first
    result["true_per_s"] = commands(system, min(plan.jobs, COMMAND_JOBS))
    result["control_ms"] = control(system, plan.control_rounds, plan.kills)
    return result


def batch(system: Jobyard, count: int) -> float:
    """Jobs/s through ``POST /api/v1/jobs/batch`` (a thousand a request)."""
    system.pause_queue("default")
    jobs = [{"type": "bench-noop", "args": {"key": 0}}] * count
    started = time.perf_counter()
    system.submit_batch(jobs)
    return count / (time.perf_counter() - started)


def commands(system: Jobyard, count: int) -> float:
    """``/bin/true`` jobs/s: queued first (queue paused), then from the resume to the last end."""
    system.pause_queue("commands")
    system.submit_batch([{"type": "bench-true"}] * count)
    started = time.time()
    system.pause_queue("commands", paused=False)
    ended: list[float | None] = [None]

    def all_ended() -> bool:
        done, ended[0] = system.ended_commands()
        return done >= count

    wait_for(all_ended, 600, interval=0.05, what=f"{count} /bin/true jobs")
    assert ended[0] is not None
    return count / (ended[0] - started)


def control(system: Jobyard, rounds: int, kills: int) -> dict[str, float]:
    """Median ms from a pause / resume / kill request to the job's new state in the API."""
    took: dict[str, list[float]] = {"pause": [], "resume": [], "kill": []}

    def act(job_id: int, action: str, state: str) -> None:
        started = time.perf_counter()
        system.http("POST", f"/api/v1/jobs/{job_id}/{action}")
        wait_for(lambda: system.state(job_id) == state, 60, interval=0.002, what=state)
        took[action].append(1000 * (time.perf_counter() - started))

    def running_sleep() -> int:
        job_id: int = system.http("POST", "/api/v1/jobs", json={"type": "bench-sleep"})["id"]
        wait_for(lambda: system.state(job_id) == "running", 60, interval=0.01, what="running")
        return job_id

    job_id = running_sleep()
    for _ in range(rounds):
        act(job_id, "pause", "paused")
        act(job_id, "resume", "running")
    act(job_id, "kill", "killed")
    for _ in range(kills - 1):
        act(running_sleep(), "kill", "killed")
    return {action: statistics.median(values) for action, values in took.items()}


def spawn_floor(count: int) -> float:
    """``posix_spawn('/bin/true')`` + ``waitpid`` in a loop in this process: spawns/s."""
    started = time.perf_counter()
    for _ in range(count):
        pid = os.posix_spawn("/bin/true", ["/bin/true"], os.environ)
        os.waitpid(pid, 0)
    return count / (time.perf_counter() - started)
