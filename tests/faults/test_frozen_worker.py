"""A worker frozen (``SIGSTOP``) past its lease, then continued: fenced off its lost jobs.

While it is frozen its leases expire, the scheduler retries its jobs and
another worker takes them (attempt 2). When it wakes up it must neither write
the end of an attempt it lost (the store refuses an end whose worker and
attempt are not the job's) nor leave that attempt's processes running.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psutil
import pytest
from sqlalchemy import text

from tests.cluster import Cluster, WorkerProcess
from tests.databases import Servers
from tests.faults.invariants import check_jobs, holders, tokens
from tests.harness import wait_for

pytestmark = pytest.mark.postgres

ENV = {"JOBYARD_LEASE_TIMEOUT": "3", "JOBYARD_HEARTBEAT_INTERVAL": "0.5"}


@pytest.fixture
def cluster(servers: Servers, tmp_path: Path) -> Iterator[Cluster]:
    with (
        servers.private_database("postgres") as url,
        Cluster(url, tmp_path, workers=0, env=ENV, label_connections=True) as running,
    ):
        yield running


def runs_on(cluster: Cluster, job_id: int, worker: WorkerProcess, attempt: int) -> bool:
    job = cluster.api.job(job_id)
    return job["state"] == "running" and job["worker"] == worker.name and job["attempt"] == attempt


def freeze_between_transactions(cluster: Cluster, worker: WorkerProcess) -> bool:
    """Stop ``worker``; True if none of its sessions was inside a transaction, else
    continue it again (False: the caller tries another moment).

    A process stopped inside a transaction keeps its row locks (until PostgreSQL's
    ``idle_in_transaction_session_timeout``, docs/deploy.md): stopped during a
    heartbeat, it would hold its jobs' rows, and no lease recovery could take them
    until it continued. That is not the case under test. Its sessions are told
    apart by their ``application_name``, the worker's name.
    """
    assert worker.proc is not None
    process = psutil.Process(worker.proc.pid)
    process.suspend()
    try:
        wait_for(lambda: process.status() == psutil.STATUS_STOPPED, what="the worker stopped")
        with cluster.store.engine.connect() as conn:
            sessions, inside = conn.execute(SESSIONS, {"name": worker.name}).one()
        assert sessions, f"no PostgreSQL session is named {worker.name}"
    except BaseException:
        process.resume()
        raise
    if inside:
        process.resume()
    return not inside


SESSIONS = text(
    "SELECT count(*), count(xact_start) FROM pg_stat_activity WHERE application_name = :name"
)


def test_a_frozen_worker_neither_ends_nor_keeps_running_a_job_it_lost(
    cluster: Cluster, tmp_path: Path
) -> None:
    tag = uuid4().hex[:8]  # worker names no other test's processes carry
    frozen = cluster.add_worker(f"frozen-{tag}")
    cluster.wait_registered()
    gates = {name: tmp_path / name for name in ("ends-while-frozen", "ends-after")}
    ids = {
        name: cluster.api.submit("gate", args={"path": str(path)})["id"]
        for name, path in gates.items()
    }
    for job_id in ids.values():
        wait_for(lambda j=job_id: runs_on(cluster, j, frozen, 1), what=f"job {job_id} to run")
    first = {name: f"{frozen.name}:{job_id}:1" for name, job_id in ids.items()}
    wait_for(
        lambda: set(holders(first.values()).values()) == set(first.values()),
        what="the first attempts' processes",
    )

    assert frozen.proc is not None
    wait_for(lambda: freeze_between_transactions(cluster, frozen), what="a freeze outside a txn")
    try:
        spare = cluster.add_worker(f"spare-{tag}")
        for job_id in ids.values():
            wait_for(lambda j=job_id: runs_on(cluster, j, spare, 2), what=f"job {job_id} retried")
        gates["ends-while-frozen"].touch()  # both attempts of it end; the frozen one unseen
        cluster.api.wait_state(ids["ends-while-frozen"], "succeeded")
    finally:
        os.kill(frozen.proc.pid, signal.SIGCONT)

    # Awake, it finds the job taken: it kills the lost attempt, the new one runs on.
    lost = first["ends-after"]
    wait_for(
        lambda: lost not in holders([lost]).values(), timeout=30, what="the lost attempt killed"
    )
    assert runs_on(cluster, ids["ends-after"], spare, 2)
    gates["ends-after"].touch()

    history = check_jobs(cluster.store, ids.values())
    assert tokens(history) == set(first.values()) | {f"{spare.name}:{i}:2" for i in ids.values()}
    for job_id in ids.values():
        job = cluster.api.job(job_id)
        assert (job["state"], job["worker"], job["attempt"]) == ("succeeded", spare.name, 2)
        printed = [line["line"] for line in cluster.api.logs(job_id) if line["stream"] == "stdout"]
        assert printed == ["through"], printed  # the frozen attempt's output was not taken
    assert frozen.alive, frozen.log()
