"""The phases every system runs, and one system's round.

A round of one system is three sessions, each starting the system afresh:

A. latency: on an idle system, one job at a time, each submitted a short random
   gap after the previous one ran; submit → the body's own start stamp.
B. throughput: N jobs submitted one at a time while the workers run; first
   submit → last body stamp (and, where the system records it, until it says
   every job succeeded). CPU of every process of the system and of its server
   (Redis, or the PostgreSQL backends of its database) before/after, RSS sampled.
C. enqueue: N jobs submitted one at a time with no worker taking them.

Transactions per job (PostgreSQL systems): sessions A and B each start, warm up
and stop the same way; B ran ``N - L`` more jobs than A, so
``(xacts(B) - xacts(A)) / (N - L)`` is what one more job costs, start-up and
shutdown cancelled out.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.compare.stamps import Stamps
from bench.compare.system import System

WARMUP = 8
TIMEOUT = 900.0


@dataclass
class Keys:
    """Job keys, unique over the whole run (the stamps are told apart by them)."""

    last: int = 0

    def take(self, count: int) -> list[int]:
        keys = list(range(self.last + 1, self.last + 1 + count))
        self.last += count
        return keys


@dataclass
class Plan:
    jobs: int
    latency_jobs: int
    gap: tuple[float, float] = (0.005, 0.025)
    control_rounds: int = 10
    kills: int = 5


@dataclass
class Session:
    """The system running, with what it was given so far."""

    system: System
    stamps: Stamps
    keys: Keys
    submitted: int = 0

    def run(self, count: int) -> tuple[list[int], float, float]:
        """Submit ``count`` jobs back to back: (keys, wall time of the first submit, client CPU)."""
        keys = self.keys.take(count)
        cpu = time.thread_time()
        first = time.time()
        for key in keys:
            self.system.submit(key)
        self.submitted += count
        return keys, first, time.thread_time() - cpu

    def warm_up(self) -> None:
        keys, _, _ = self.run(WARMUP)
        self.stamps.wait(keys, 120)

    def all_done(self) -> None:
        """Until the system's own record (if it keeps one) shows every job succeeded."""
        if self.system.completed() is None:
            return
        deadline = time.monotonic() + 120
        while (done := self.system.completed() or 0) < self.submitted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.system.name}: {done} of {self.submitted} succeeded")
            time.sleep(0.05)


def latency(session: Session, plan: Plan) -> list[float]:
    """Seconds from just before each submit to the start of that job's body."""
    took = []
    for _ in range(plan.latency_jobs):
        time.sleep(random.uniform(*plan.gap))
        (key,) = session.keys.take(1)
        sent = time.time()
        session.system.submit(key)
        session.submitted += 1
        took.append(session.stamps.wait([key], 60) - sent)
    return took


def throughput(session: Session, plan: Plan) -> dict[str, Any]:
    system = session.system
    groups_before = system.roles.cpu()
    idle_rss = system.roles.rss()
    with _sampling(system.roles.rss) as peak:
        keys, first, client_cpu = session.run(plan.jobs)
        submitted = time.time()
        last = session.stamps.wait(keys, TIMEOUT)
        session.all_done()
    ended = max(last, time.time()) if system.completed() is not None else last
    after = system.roles.cpu()
    cpu = {role: after.get(role, 0.0) - before for role, before in groups_before.items()}
    return {
        "jobs_per_s": plan.jobs / (ended - first),
        "submit_s": submitted - first,
        "cpu_ms_per_job": {role: 1000 * s / plan.jobs for role, s in cpu.items()},
        "client_cpu_ms_per_job": 1000 * client_cpu / plan.jobs,
        "rss_idle_mb": idle_rss / 2**20,
        "rss_loaded_mb": max(peak) / 2**20,
    }


def enqueue(session: Session, plan: Plan) -> float:
    _, first, _ = session.run(plan.jobs)
    return plan.jobs / (time.time() - first)


class _sampling:
    """Sample ``probe()`` every 0.25 s in a thread while the block runs."""

    def __init__(self, probe: Callable[[], int]) -> None:
        self.probe = probe
        self.values: list[int] = []
        self.done = threading.Event()

    def _loop(self) -> None:
        while not self.done.is_set():
            self.values.append(self.probe())
            self.done.wait(0.25)

    def __enter__(self) -> list[int]:
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self.values

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        self.values.append(self.probe())


def one_round(
    system: System,
    stamps: Stamps,
    keys: Keys,
    plan: Plan,
    extra: Callable[[System, Plan], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Sessions A, B and C of ``system`` (see the module's docstring); its figures."""
    system.prepare()
    try:
        before = system.xacts()
        with _started(system, stamps, keys) as session:
            took = latency(session, plan)
            session.all_done()
        after_a = system.xacts()
        with _started(system, stamps, keys) as session:
            result = throughput(session, plan)
        after_b = system.xacts()
        with _started(system, stamps, keys, workers=False) as session:
            result["enqueue_per_s"] = enqueue(session, plan)
            if extra is not None:
                result |= extra(system, plan)
    finally:
        system.stop()
        system.cleanup()
    ms = sorted(1000 * t for t in took)
    result["latency_ms"] = {
        "p50": statistics.median(ms),
        "p99": ms[max(round(len(ms) * 0.99) - 1, 0)],
        "max": ms[-1],
    }
    if before is not None and after_a is not None and after_b is not None:
        extra_jobs = plan.jobs - plan.latency_jobs
        result["xacts_per_job"] = ((after_b - after_a) - (after_a - before)) / extra_jobs
    return result


@contextmanager
def _started(system: System, stamps: Stamps, keys: Keys, workers: bool = True) -> Iterator[Session]:
    """The system started (and warmed up, with workers), stopped at the end."""
    try:
        system.start(workers)
        session = Session(system, stamps, keys)
        if workers:
            session.warm_up()
        yield session
    finally:
        system.stop()
