"""A step of the worker's tick that keeps failing holds up no job's end.

The worker's loop stores the ends its runs hand it, after the tick's other
steps (controls, heartbeat, drain). Here the heartbeat fails at every tick once
a job runs (a stand-in for a bug, or a statement the database keeps refusing):
the run must get its end back and store it itself, not wait for a tick that
never gets that far. The in-memory store keeps it fast; the job is a real
process.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from jobyard.models import JobSpec, NewJob
from jobyard.runner.local import Runner
from jobyard.states import JobState
from jobyard.store.memory import MemoryStore
from jobyard.worker.loop import Worker, WorkerSettings
from tests.harness import wait_for


def test_a_job_ends_while_the_workers_heartbeat_keeps_failing() -> None:
    store = MemoryStore()
    renew = store.queue.renew_leases
    failed: list[int] = []

    def renew_unless_running(
        worker: str, now: datetime, until: datetime, job_ids: Collection[int] | None = None
    ) -> list[int]:
        if job_ids:
            failed.append(len(job_ids))
            raise RuntimeError("heartbeat refused")
        return renew(worker, now, until, job_ids)

    store.queue.renew_leases = renew_unless_running  # type: ignore[method-assign]
    now = datetime.now(UTC)
    new = NewJob("t", {}, JobSpec(argv=["true"]), "default", 0, JobState.QUEUED)
    [(job, _)] = store.jobs.add_jobs([new], now)
    settings = WorkerSettings(name="w1", concurrency=1, heartbeat_interval=0, poll_interval=0.05)
    worker = Worker(store, Runner(python_pool=0), settings)
    worker.start()
    try:
        ended = wait_for(
            lambda: (found := store.jobs.get_job(job.id)) and found.state.terminal and found,
            timeout=20,
            what="the job to end",
        )
        assert ended.state is JobState.SUCCEEDED
        assert failed  # its ticks did fail while it ran
    finally:
        worker.stop(drain_timeout=0)
    assert store.workers.get_worker("w1") is None
