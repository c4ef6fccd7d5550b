"""PostgreSQL: a worker wakes for the NOTIFYs that concern it, and only for those.

The worker polls once a minute here and its heartbeat is as slow, so anything
it does within the test's deadlines was started by a notification. Its loop
thread's statements are counted on its own engine (an observation: nothing is
replaced).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event

from jobyard.config import load_config
from jobyard.manager import Submission
from jobyard.node import Node
from jobyard.runner.local import Runner
from jobyard.settings import Settings
from jobyard.states import Event, JobState
from jobyard.store import Store
from jobyard.worker.loop import Worker, WorkerSettings
from tests.databases import Servers
from tests.harness import CONFIG, wait_for

pytestmark = pytest.mark.postgres


@dataclass
class Setup:
    node: Node  # submits and controls, as an API node would
    worker: Worker
    statements: list[str]  # those of the worker's loop thread

    def submit(self, queue: str, job_type: str = "sleep") -> int:
        return self.node.manager.submit(Submission(type=job_type, queue=queue))[0].id

    def running(self, job_id: int) -> bool:
        job = self.node.store.jobs.get_job(job_id)
        return job is not None and job.state is JobState.RUNNING and job.worker == "w-a"


@pytest.fixture
def setup(servers: Servers) -> Iterator[Setup]:
    with servers.private_database("postgres") as url:
        node = Node(
            Settings(database_url=url),
            load_config(CONFIG),
            worker=False,
            scheduler=False,
            api=False,
        )
        node.start()
        store = Store(url)
        statements: list[str] = []

        @event.listens_for(store.engine, "before_cursor_execute")
        def count(*args: Any) -> None:
            if threading.current_thread().name == "worker-w-a":
                statements.append(args[2])

        slow = WorkerSettings(
            name="w-a", queues=["a"], concurrency=4, poll_interval=60, heartbeat_interval=60
        )
        worker = Worker(store, Runner(python_pool=0), slow)
        worker.start()
        try:
            yield Setup(node, worker, statements)
        finally:
            worker.stop(drain_timeout=0)
            worker.runner.close()
            store.close()
            node.stop()


def test_a_worker_sleeps_through_other_queues_and_wakes_for_its_own(setup: Setup) -> None:
    first = setup.submit("a")
    wait_for(lambda: setup.running(first), timeout=20, what="the first job claimed")
    before = len(setup.statements)
    second = setup.submit("a")
    wait_for(lambda: setup.running(second), timeout=20, what="a job of its queue claimed")
    one_wakeup = len(setup.statements) - before

    before = len(setup.statements)
    for _ in range(50):
        setup.submit("b")
    third = setup.submit("a")  # notifications arrive in order: the 50 came before this one
    wait_for(lambda: setup.running(third), timeout=20, what="the last job of its queue claimed")
    assert len(setup.statements) - before <= 2 * one_wakeup


def test_a_control_and_a_drain_reach_the_worker_at_once(setup: Setup) -> None:
    job_id = setup.submit("a")
    wait_for(lambda: setup.running(job_id), timeout=20, what="the job claimed")
    setup.node.manager.act(job_id, Event.KILL)

    def killed() -> bool:
        job = setup.node.store.jobs.get_job(job_id)
        return job is not None and job.state is JobState.KILLED

    wait_for(killed, timeout=20, what="the kill applied")
    setup.node.roster.drain("w-a", timeout=0)
    wait_for(setup.worker.stopped.is_set, timeout=20, what="the worker drained")
