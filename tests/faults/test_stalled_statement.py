"""A worker whose database statement stalls stops its jobs once their lease lapses.

A statement can hang without failing: a database or proxy that keeps the connection
and does not answer, a connection cut mid-statement that the client sees only at its
read timeout (120 s by default on MariaDB), a row lock held elsewhere. The worker's
loop waits with it, and cannot renew its leases; past them the job may run again
elsewhere. Its lease watch, which waits for no database, kills the attempt's
processes then. Here a transaction holds the job's row, so the heartbeat's
renewal waits on it for as long as the test likes.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import text

from tests.cluster import Cluster, WorkerProcess
from tests.databases import Servers
from tests.faults.conftest import CLUSTER_ENV
from tests.faults.invariants import check_jobs, holders, tokens
from tests.harness import wait_for

HOLD_ROW = text("SELECT id FROM jobs WHERE id = :id FOR UPDATE")
HOLD_WORKER = text("SELECT name FROM workers WHERE name = :name FOR UPDATE")
LEASE_RENEWED = text("SELECT lease_expires_at FROM jobs WHERE id = :id")
SERVERS = pytest.mark.parametrize(
    "backend",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)


@dataclass(frozen=True)
class Running:
    """One worker of a cluster of its own, running one job's first attempt."""

    cluster: Cluster
    worker: WorkerProcess
    job_id: int

    @property
    def first(self) -> str:
        """The first attempt's token, which its processes carry."""
        return f"{self.worker.name}:{self.job_id}:1"

    def wait_fenced(self, what: str) -> None:
        first = self.first
        wait_for(lambda: first not in holders([first]).values(), timeout=30, what=what)


@contextmanager
def running(
    servers: Servers, backend: str, tmp_path: Path, env: dict[str, str], job_type: str, **body: Any
) -> Iterator[Running]:
    """A cluster on a database of its own, one worker, and a ``job_type`` job running on it."""
    with (
        servers.private_database(backend) as url,
        Cluster(url, tmp_path, workers=0, env=env) as cluster,
    ):
        worker = cluster.add_worker(f"stalled-{uuid4().hex[:8]}")
        cluster.wait_registered()
        job_id = cluster.api.submit(job_type, **body)["id"]
        found = Running(cluster, worker, job_id)
        first = found.first
        wait_for(lambda: first in holders([first]).values(), what="the first attempt's processes")
        yield found


@SERVERS
def test_a_worker_held_in_a_statement_kills_the_attempt_whose_lease_lapsed(
    backend: str, servers: Servers, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    with running(servers, backend, tmp_path, CLUSTER_ENV, "gate", args={"path": str(gate)}) as it:
        cluster, worker, job_id, first = it.cluster, it.worker, it.job_id, it.first
        with cluster.store.engine.connect() as conn:
            # Held until the rollback: the worker's next heartbeat waits on this row.
            conn.execute(HOLD_ROW, {"id": job_id})
            with cluster.store.engine.connect() as other:
                before = other.execute(LEASE_RENEWED, {"id": job_id}).scalar_one()
            it.wait_fenced("the attempt killed while the worker's statement waits")
            with cluster.store.engine.connect() as other:
                # Not renewed since the row was taken: the worker never got past its statement.
                assert other.execute(LEASE_RENEWED, {"id": job_id}).scalar_one() == before
            conn.rollback()

        # Once the row is free, the lapsed lease is recovered like a lost worker's and the
        # job runs again (on the same worker, which lives on); its first attempt ends nowhere.
        def second_attempt() -> bool:
            job = cluster.api.job(job_id)
            return job["attempt"] == 2 and job["state"] == "running"

        wait_for(second_attempt, timeout=60, what="the job's second attempt")
        assert cluster.api.job(job_id)["worker"] == worker.name
        gate.touch()
        job = cluster.api.wait_state(job_id, "succeeded", timeout=60)
        assert job["attempt"] == 2
        history = check_jobs(cluster.store, [job_id])
        assert tokens(history) == {first, f"{worker.name}:{job_id}:2"}
        said = [line["line"] for line in cluster.api.logs(job_id) if line["stream"] == "system"]
        lost = f"attempt 1 lost: its worker {worker.name} did not renew the lease in time"
        assert lost in said, said
        assert worker.alive, worker.log()


@SERVERS
def test_a_worker_stopped_while_its_statements_hang_exits_and_names_the_job(
    backend: str, servers: Servers, tmp_path: Path
) -> None:
    """SIGTERM while the job's row and the worker's own row are held: the worker's
    writes (its heartbeat, its draining state, its unregistration) all wait. It stops
    within its bounds all the same, naming the job it fenced and could not hand back."""
    env = CLUSTER_ENV | {"JOBYARD_DRAIN_TIMEOUT": "1", "JOBYARD_KILL_GRACE": "1"}
    never = {"path": str(tmp_path / "never")}
    with running(servers, backend, tmp_path, env, "gate", args=never) as it:
        with it.cluster.store.engine.connect() as conn:
            conn.execute(HOLD_ROW, {"id": it.job_id})
            conn.execute(HOLD_WORKER, {"name": it.worker.name})
            it.wait_fenced("the attempt fenced while the worker's statement waits")
            code = it.worker.terminate(timeout=90)
            conn.rollback()
        assert code == 1, it.worker.log()
        told = "jobs not handed back, the database did not answer: "
        assert f"jobyard: error: {told}{it.job_id} " in it.worker.log()


@pytest.mark.postgres
def test_the_lease_watch_goes_on_while_a_stopping_worker_waits_out_its_kill_grace(
    servers: Servers, tmp_path: Path
) -> None:
    """SIGTERM while the job's row is held, the job ignoring SIGTERM, a kill grace longer
    than the lease: the hand-back waits out the grace, the heartbeat renews nothing. The
    lease watch still kills the job before its lease lapses, not at the grace's end."""
    env = CLUSTER_ENV | {"JOBYARD_DRAIN_TIMEOUT": "0", "JOBYARD_KILL_GRACE": "60"}
    with running(servers, "postgres", tmp_path, env, "deaf") as it:
        with it.cluster.store.engine.connect() as conn:
            conn.execute(HOLD_ROW, {"id": it.job_id})
            assert it.worker.proc is not None
            it.worker.proc.send_signal(signal.SIGTERM)
            # The lease is 3 s; the grace, 60 s.
            it.wait_fenced("the attempt fenced during the hand-back's grace")
            conn.rollback()
        assert it.worker.proc.wait(timeout=90) == 1, it.worker.log()
