"""``kill -9`` of the embedded server in the middle of a large workflow run, then a restart.

A run of ``1 → NODES - 2 → 1`` no-op nodes is under way when the server dies
without a word: some nodes ended, some were running, most wait. Started again
on the same database, the server must finish the run: every node has one job
that ends exactly once (a job the dead server was running is retried, as its
type allows retries, never run twice to success), the last node runs once, and the invariants of
:mod:`tests.faults.invariants` hold.

CI runs 500 nodes; ``JOBYARD_FAULT_WORKFLOW_NODES=10000`` runs the size the
reliability issue names (by hand: minutes, not seconds).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from jobyard.store import Store
from tests.faults.invariants import check_jobs
from tests.harness import Launcher, Server, run_in, wait_for

NODES = int(os.environ.get("JOBYARD_FAULT_WORKFLOW_NODES", "500"))
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# A dead server's leases run out quickly; a few slots, as on a small machine.
ENV = {
    "JOBYARD_CONCURRENCY": "8",
    "JOBYARD_LEASE_TIMEOUT": "3",
    "JOBYARD_HEARTBEAT_INTERVAL": "0.5",
}

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("database_url", BACKENDS, indirect=True)]


def wide_config(path: Path, nodes: int) -> Path:
    """``first`` → ``m0`` … ``m{nodes-3}`` → ``last``, each a ``true`` command.

    With retries: a job whose worker is lost is retried only if it has attempts
    left (docs/workers.md); without, the nodes running at the kill end ``failed``.
    """
    middle = "\n".join(f"      m{i}: {{type: noop, depends_on: [first]}}" for i in range(nodes - 2))
    joined = ", ".join(f"m{i}" for i in range(nodes - 2))
    path.write_text(
        'job_types:\n  noop: {command: ["true"], retries: {max: 2, initial: 0.1}}\n'
        f"workflows:\n  wide:\n    nodes:\n      first: {{type: noop}}\n{middle}\n"
        f"      last: {{type: noop, depends_on: [{joined}]}}\n"
    )
    return path


def succeeded_nodes(store: Store, run_id: int) -> int:
    return sum(node.state.value == "succeeded" for node in store.runs.node_jobs(run_id).values())


def test_a_large_workflow_killed_midway_finishes_once(
    database_url: str, launch: Launcher, tmp_path: Path
) -> None:
    config = wide_config(tmp_path / "wide.yaml", NODES)
    server = launch(database_url, config=config, env=ENV)
    started = time.perf_counter()
    # One transaction makes every node: seconds for 10,000 on a loaded machine.
    response = server.client.post("/api/v1/workflows/wide/runs", json={}, timeout=NODES / 50)
    assert response.status_code == 201, response.text
    run = response.json()
    store = Store(database_url)
    try:
        # Midway: a tenth of the nodes done, the rest running or waiting.
        wait_for(
            lambda: succeeded_nodes(store, run["id"]) >= NODES // 10,
            timeout=max(120, NODES / 20),
            interval=0.1,
            what="a tenth of the nodes to end",
        )
        server.crash()
        at_kill = succeeded_nodes(store, run["id"])
        assert at_kill < NODES - 1, "the run was nearly over before the kill"

        again: Server = launch(database_url, config=config, env=ENV)
        finished = run_in(again, run["id"], "succeeded", "failed", timeout=max(120, NODES / 10))
        elapsed = time.perf_counter() - started
        assert finished["state"] == "succeeded", unsuccessful(store, run["id"])
        check_run(store, run["id"])
    finally:
        store.close()
    print(f"{NODES} nodes, killed after {at_kill} ended: the run took {elapsed:.1f} s")


def unsuccessful(store: Store, run_id: int) -> list[tuple[Any, ...]]:
    """The run's jobs that did not succeed, for a failure message."""
    jobs = store.runs.run_jobs(run_id)
    return [
        (job.id, job.node, job.state.value, job.reason, job.attempt, job.error)
        for job in jobs
        if job.state.value != "succeeded"
    ][:10]


def check_run(store: Store, run_id: int) -> None:
    """One job per node, each ended once and successfully; the last node claimed once."""
    jobs = store.runs.run_jobs(run_id)
    nodes = [job.node for job in jobs]
    assert len(nodes) == NODES == len(set(nodes)), "a node has several jobs, or none"
    history = check_jobs(store, [job.id for job in jobs])
    states: dict[Any, str] = {job.node: history[job.id][-1].state for job in jobs}
    assert set(states.values()) == {"succeeded"}
    [last] = [job for job in jobs if job.node == "last"]
    assert [event.claim for event in history[last.id]].count(True) == 1
