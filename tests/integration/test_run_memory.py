"""An ended job's run is freed when the worker lets go of it, not by the cycle collector.

At 50 jobs a second, runs that only the cycle collector could free piled up between
its full collections (each with its process object, pipes and read buffers), and the
server's memory grew with them. Here the collector is off while jobs run: every run
object must still go once its job ended.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobyard.config import load_config
from jobyard.manager import Submission
from jobyard.models import JobSpec, NewJob
from jobyard.node import Node
from jobyard.runner.local import Runner
from jobyard.settings import Settings
from jobyard.states import JobState
from jobyard.store.memory import MemoryStore
from jobyard.worker.attempt import JobRun
from jobyard.worker.loop import Worker, WorkerSettings
from tests.harness import CONFIG, wait_for

JOBS = 30


@pytest.fixture
def collector_off() -> Iterator[None]:
    was = gc.isenabled()
    gc.collect()  # what earlier tests of this process left to it: not this test's runs
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def live_runs() -> list[JobRun]:
    return [obj for obj in gc.get_objects() if isinstance(obj, JobRun)]


def test_ended_runs_are_freed_without_the_cycle_collector(
    tmp_path: Path, collector_off: None
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'runs.db'}", python_pool=0)
    node = Node(settings, load_config(CONFIG), scheduler=False, api=False)
    node.start()
    try:
        ids = [
            node.manager.submit(Submission(type="echo", args={"text": "x"}))[0].id
            for _ in range(JOBS)
        ]

        def all_ended() -> bool:
            jobs = [node.store.jobs.get_job(job_id) for job_id in ids]
            return all(job is not None and job.state.terminal for job in jobs)

        wait_for(all_ended, timeout=60, what="the jobs ended")
        seen = [weakref.ref(run) for run in live_runs()]
        # The worker drops ended runs at its next tick, and their threads finish.
        wait_for(lambda: not live_runs(), timeout=10, what="no run object left")
        assert all(ref() is None for ref in seen)
    finally:
        node.stop()


def test_runs_that_stored_their_own_end_are_freed_without_the_cycle_collector(
    collector_off: None,
) -> None:
    """The worker's tick fails while jobs run (here its heartbeat, every time): it hands
    each end back, and the run stores it itself. The error it was handed back with must
    not hold the run in a cycle."""
    store = MemoryStore()
    renew = store.queue.renew_leases

    def renew_unless_running(
        worker: str, now: datetime, until: datetime, job_ids: Collection[int] | None = None
    ) -> list[int]:
        if job_ids:
            raise RuntimeError("heartbeat refused")
        return renew(worker, now, until, job_ids)

    store.queue.renew_leases = renew_unless_running  # type: ignore[method-assign]
    new = NewJob("t", {}, JobSpec(argv=["true"]), "default", 0, JobState.QUEUED)
    ids = [job.id for job, _ in store.jobs.add_jobs([new] * 5, datetime.now(UTC))]
    settings = WorkerSettings(name="w1", concurrency=2, heartbeat_interval=0, poll_interval=0.05)
    worker = Worker(store, Runner(python_pool=0), settings)
    worker.start()
    try:
        wait_for(
            lambda: all(job.state.terminal for job in store.jobs.jobs_by_id(ids)),
            timeout=30,
            what="the jobs ended",
        )
        wait_for(lambda: not live_runs(), timeout=10, what="no run object left")
    finally:
        worker.stop(drain_timeout=0)
