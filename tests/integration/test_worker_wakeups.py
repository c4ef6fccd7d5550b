"""A worker wakes for the announcements that concern it, and only for those.

On PostgreSQL a NOTIFY announces work and controls; in the embedded server the
submission offers its jobs to the worker in-process. The worker never polls
within a test here and its heartbeat comes once a minute, so anything it does
within the test's deadlines was started by an announcement (or by a slot freed after a
claim that saw more waiting). Its loop thread's statements are counted on its
own engine (an observation: nothing is replaced).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
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
from tests.processes import all_gone, tree

# A gate with no limits stored: a worker with max_running limits claims at every freed
# slot whatever its last claim saw, which would hide what these tests look at.
GATE = """
job_types:
  gate:
    command: ["sh", "-c", "while [ ! -e \\"$0\\" ]; do sleep 0.05; done", "{path}"]
    params:
      path: {type: string, required: true}
  plain: {command: ["true"], queue: other}
  tagged: {command: ["true"], queue: other, tags: [gpu]}
queues:
  other: {}
"""

# A worker of queue a, and jobs of queues a and b (a job may name only a declared queue).
QUEUES = """
job_types:
  sleep:
    command: ["sleep", "{seconds}"]
    params:
      seconds: {type: number, default: 60}
queues:
  a: {}
  b: {}
"""


@dataclass
class Setup:
    node: Node  # submits and controls, as an API node would
    worker: Worker
    statements: list[str]  # those of the worker's loop thread

    def submit(self, queue: str, job_type: str = "sleep") -> int:
        return self.node.manager.submit(Submission(type=job_type, queue=queue))[0].id

    def running(self, job_id: int) -> bool:
        return self.state(job_id) is JobState.RUNNING

    def state(self, job_id: int) -> JobState | None:
        job = self.node.store.jobs.get_job(job_id)
        return job.state if job is not None and job.worker == "w-a" else None

    def claims(self) -> int:
        """The claims the worker's loop thread ran (their locking read, on every dialect;
        the look for any job a claim could take has the same filter, and no order)."""
        return sum(
            "jobs.route IN" in statement and "ORDER BY" in statement
            for statement in self.statements
        )


def counted(engine: Any) -> list[str]:
    """The statements that the loop thread of worker ``w-a`` runs on ``engine`` from now on."""
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def count(*args: Any) -> None:
        if threading.current_thread().name == "worker-w-a":
            statements.append(args[2])

    return statements


@contextmanager
def worker_apart(
    url: str,
    config: Path = CONFIG,
    *,
    queues: list[str] | None = None,
    concurrency: int = 4,
    start: bool = True,
) -> Iterator[Setup]:
    """An API node and, apart, a slow-polling worker (woken by NOTIFY on PostgreSQL);
    without ``start``, the test starts the worker."""
    node = Node(
        Settings(database_url=url), load_config(config), worker=False, scheduler=False, api=False
    )
    node.start()
    store = Store(url)
    statements = counted(store.engine)
    slow = WorkerSettings(
        name="w-a",
        queues=queues,
        concurrency=concurrency,
        poll_interval=3600,  # never within a test: what it does was announced
        heartbeat_interval=60,
        lease_timeout=120,
    )
    worker = Worker(store, Runner(python_pool=0), slow)
    if start:
        worker.start()
    try:
        yield Setup(node, worker, statements)
    finally:
        worker.stop(drain_timeout=0)
        worker.runner.close()
        store.close()
        node.stop()


@pytest.fixture
def setup(servers: Servers, tmp_path: Path) -> Iterator[Setup]:
    config = tmp_path / "queues.yaml"
    config.write_text(QUEUES)
    with (
        servers.private_database("postgres") as url,
        worker_apart(url, config, queues=["a"]) as it,
    ):
        yield it


@pytest.fixture
def gate_config(tmp_path: Path) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(GATE)
    return path


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "embedded"])
def single(request: pytest.FixtureRequest, servers: Servers, gate_config: Path) -> Iterator[Setup]:
    """One worker with one slot: apart on PostgreSQL, or inside the embedded server."""
    if request.param == "postgres":
        with (
            servers.private_database("postgres") as url,
            worker_apart(url, gate_config, concurrency=1) as it,
        ):
            yield it
        return
    url = request.getfixturevalue("sqlite_url")
    settings = Settings(
        database_url=url,
        worker_name="w-a",
        concurrency=1,
        python_pool=0,
        poll_interval=3600,  # never within a test: what it does was announced
        heartbeat_interval=60,
        lease_timeout=120,
    )
    node = Node(settings, load_config(gate_config), scheduler=False, api=False)
    assert node.worker is not None
    statements = counted(node.store.engine)
    node.start()
    try:
        yield Setup(node, node.worker, statements)
    finally:
        node.stop()


@pytest.mark.postgres
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


@pytest.mark.postgres
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


def gate(setup: Setup, path: Path) -> int:
    """A job that runs until ``path`` exists."""
    submission = Submission(type="gate", args={"path": str(path)})
    return setup.node.manager.submit(submission)[0].id


def test_a_job_queued_while_every_slot_is_busy_starts_when_one_frees(
    single: Setup, tmp_path: Path
) -> None:
    """The announcement of a job that finds no free slot is kept until a slot frees:
    the worker's last claim filled its slot and saw nothing more, so nothing else would
    make it look before its next poll, a minute away."""
    first = gate(single, tmp_path / "first")
    wait_for(lambda: single.running(first), timeout=20, what="the first job claimed")
    second = gate(single, tmp_path / "second")
    (tmp_path / "first").touch()
    wait_for(lambda: single.running(second), timeout=20, what="the second job claimed")
    assert single.state(first) is JobState.SUCCEEDED
    (tmp_path / "second").touch()
    wait_for(lambda: single.state(second) is JobState.SUCCEEDED, timeout=20, what="its end")


def test_a_freed_slot_claims_again_only_while_its_last_claim_saw_more_waiting(
    single: Setup, tmp_path: Path
) -> None:
    blocker = gate(single, tmp_path / "blocker")
    wait_for(lambda: single.running(blocker), timeout=20, what="the blocker claimed")
    first, second = gate(single, tmp_path / "first"), gate(single, tmp_path / "second")
    (tmp_path / "blocker").touch()
    wait_for(lambda: single.running(first), timeout=20, what="the first job claimed")
    # Its claim saw the second job waiting: the freed slot claims it, unannounced.
    (tmp_path / "first").touch()
    wait_for(lambda: single.running(second), timeout=20, what="the second job claimed")
    claims = single.claims()
    # This claim saw nothing more: the freed slot claims nothing until an announcement
    # (on SQLite, where it hears of no other process's jobs, it reads first: no claim).
    (tmp_path / "second").touch()
    wait_for(lambda: single.state(second) is JobState.SUCCEEDED, timeout=20, what="its end")
    third = gate(single, tmp_path / "third")
    wait_for(lambda: single.running(third), timeout=20, what="the third job claimed")
    assert single.claims() - claims == 1  # the third's, and no empty one before it
    (tmp_path / "third").touch()


def test_a_job_of_a_paused_queue_or_needing_tags_it_lacks_does_not_wake_the_worker(
    single: Setup, tmp_path: Path
) -> None:
    def ran(job_id: int) -> None:
        wait_for(lambda: single.state(job_id) is JobState.SUCCEEDED, timeout=20, what="its end")

    ran(single.submit("other", "plain"))  # the worker's first look is over
    single.node.set_queue_paused("default", True)
    claims = single.claims()
    held = gate(single, tmp_path / "held")
    tagged = single.submit("other", "tagged")
    ran(single.submit("other", "plain"))  # announced after the two others
    assert single.claims() - claims == 1  # the plain job's only
    assert single.node.store.jobs.get_job(tagged).state is JobState.QUEUED  # type: ignore[union-attr]
    single.node.set_queue_paused("default", False)  # the resume wakes the worker
    wait_for(lambda: single.running(held), timeout=20, what="the held job claimed")
    (tmp_path / "held").touch()


def test_without_notify_a_freed_slot_still_finds_a_job_queued_while_it_was_busy(
    sqlite_url: str, gate_config: Path, tmp_path: Path
) -> None:
    """A worker apart on SQLite hears of no job that another process queues: after a
    claim that filled its slot and saw nothing more waiting, the freed slot still looks
    (a read first), rather than leave the job beside it until the next poll."""
    with worker_apart(sqlite_url, gate_config, concurrency=1, start=False) as apart:
        first = gate(apart, tmp_path / "first")  # queued before the worker's first look
        apart.worker.start()  # its first tick is its only poll within the test
        wait_for(lambda: apart.running(first), timeout=20, what="the first job claimed")
        second = gate(apart, tmp_path / "second")  # announced to nobody
        (tmp_path / "first").touch()
        wait_for(lambda: apart.running(second), timeout=20, what="the second job claimed")
        (tmp_path / "second").touch()
        wait_for(lambda: apart.state(second) is JobState.SUCCEEDED, timeout=20, what="its end")


def test_a_forced_removal_reaches_the_worker_at_once(
    single: Setup, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A forced removal deletes a running job: no row is left to record a kill on. The
    removal wakes the worker (NOTIFY, or in-process), whose look for intents finds the
    job gone and stops its run then, not at its heartbeat a minute away."""
    job_id = gate(single, tmp_path / "never")
    wait_for(lambda: single.running(job_id), timeout=20, what="the job claimed")
    pid = wait_for(lambda: single.node.manager.get(job_id).pid, what="its pid")
    processes = tree(pid)
    with caplog.at_level(logging.INFO, logger="jobyard.worker.loop"):
        single.node.manager.remove(job_id, force=True)

        def stopped_by_the_loop() -> bool:
            return any(
                r.threadName == "worker-w-a" and getattr(r, "job", None) == job_id
                for r in caplog.records
            )

        wait_for(stopped_by_the_loop, timeout=20, what="the worker's loop to stop the run")
    wait_for(lambda: all_gone(processes), timeout=20, what="the job's processes gone")
