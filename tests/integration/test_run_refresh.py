"""A workflow run is looked at again only after the ends that can change its state.

An end whose commit leaves another node of its run live (a dependent still waiting,
or just released, or a node claimed with it) leaves the run's state as it was: the
worker does not read the run again after it, and the run still ends, told once, when
its last node does.
"""

from __future__ import annotations

import threading
from pathlib import Path

from jobyard.config import load_config
from jobyard.events.records import WorkflowRunFinished
from jobyard.models import RunState, WorkflowRun
from jobyard.node import Node
from jobyard.settings import Settings
from jobyard.states import JobState
from tests.harness import wait_for

WIDTH = 12


def wide_config(tmp_path: Path) -> Path:
    middle = "\n".join(f"      m{i}: {{type: fine, depends_on: [first]}}" for i in range(WIDTH))
    joined = ", ".join(f"m{i}" for i in range(WIDTH))
    config = tmp_path / "jobyard.yaml"
    config.write_text(
        "job_types:\n  fine: {command: ['true']}\n  fails: {command: ['false']}\n"
        f"workflows:\n  wide:\n    nodes:\n      first: {{type: fine}}\n{middle}\n"
        f"      last: {{type: fine, depends_on: [{joined}]}}\n"
        "  broken:\n    nodes:\n      first: {type: fine}\n"
        "      bad: {type: fails, depends_on: [first]}\n"
        + "".join(f"      m{i}: {{type: fine, depends_on: [first]}}\n" for i in range(WIDTH))
        + f"      last: {{type: fine, depends_on: [bad, {joined}]}}\n"
    )
    return config


def test_a_wide_run_is_read_once_its_last_node_ends_and_ends_told_once(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'runs.db'}", python_pool=0, concurrency=4
    )
    node = Node(settings, load_config(wide_config(tmp_path)), scheduler=False)
    looked: list[int] = []
    live_run, lock = node.store.runs.live_run, threading.Lock()

    def counted(run_id: int) -> tuple[WorkflowRun, bool] | None:
        with lock:
            looked.append(run_id)
        return live_run(run_id)

    node.store.runs.live_run = counted  # type: ignore[method-assign]
    node.start()
    try:
        for name, state in (("wide", RunState.SUCCEEDED), ("broken", RunState.FAILED)):
            run, _ = node.runs.start(name)

            def ended(run_id: int = run.id) -> bool:
                found = node.store.runs.get_run(run_id)
                return found is not None and found.finished_at is not None

            wait_for(ended, timeout=60, what=f"the run of {name} ended")
            final, latest = node.runs.get(run.id)
            assert final.state is state
            assert all(job.state.terminal for job in latest.values())
            # Each batch of its nodes' ends used to read the run (8 or more at 4 slots);
            # now only the ends that leave no node of it live do: in ``wide`` the last
            # node's. In ``broken``, once ``last`` is blocked, the middle nodes still
            # running end in up to one batch a slot, then ``bad``'s batch may read it.
            most = 2 if name == "wide" else settings.concurrency + 2
            assert 1 <= looked.count(run.id) <= most, looked
            told = [
                e.record
                for job in latest.values()
                for e in node.store.jobs.job_events(job.id)
                if isinstance(e.record, WorkflowRunFinished)
            ]
            assert [(t.run_id, t.state) for t in told] == [(run.id, state)]
            if name == "broken":
                assert latest["last"].state is JobState.UPSTREAM_FAILED
    finally:
        node.stop()
