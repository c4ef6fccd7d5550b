"""``kill -9`` of a worker process and of an API-only node on PostgreSQL, at chosen points.

A worker armed with ``JOBYARD_FAULT`` dies at that point; the scheduler (on
the API-only node) sees its leases expire and another worker finishes the work.
An API-only node killed while it serves leaves the workers running and the
next node sees every job through.
"""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from tests.cluster import Cluster, WorkerProcess
from tests.faults.invariants import check_jobs
from tests.harness import Server, wait_for

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("point", ["claim.before_commit", "end.before_commit", "end.after_commit"])
def test_a_worker_killed_at_a_point_loses_nothing(cluster: Cluster, point: str) -> None:
    tag = uuid4().hex[:8]
    env = cluster.env | {"JOBYARD_FAULT": point}
    doomed = WorkerProcess(f"doomed-{tag}", cluster.database_url, cluster.workdir, env=env)
    cluster.procs.append(doomed.start())
    cluster.wait_registered()
    ids = cluster.submit_batch([{"type": "nap", "args": {"seconds": 0.2}} for _ in range(4)])
    wait_for(lambda: doomed.proc is not None and doomed.proc.poll() == -9, what="the kill")
    spare = cluster.add_worker(f"spare-{tag}")
    history = check_jobs(cluster.store, ids)
    for job_id, events in history.items():
        job = cluster.api.job(job_id)
        assert job["state"] == "succeeded", (job, cluster.logs())
        if point == "end.after_commit" and job["worker"] == doomed.name:
            assert job["attempt"] == 1  # its end was stored: not run again
        else:
            assert job["worker"] == spare.name
        assert [e.state for e in events].count("succeeded") == 1


def test_an_api_node_killed_under_load_leaves_no_job_behind(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.add_worker(f"worker-{uuid4().hex[:8]}")
    cluster.wait_registered()
    ids = cluster.submit_batch([{"type": "tick", "args": {"count": 10, "pause": 0.1}}] * 8)
    cluster.api.crash()
    node = Server(cluster.database_url, tmp_path, args=["--no-worker"], env=cluster.env)
    cluster.apis[0] = node.start()
    more = cluster.submit_batch([{"type": "nap", "args": {"seconds": 0.1}}] * 4)
    history = check_jobs(cluster.store, ids + more)
    assert all(events[-1].state == "succeeded" for events in history.values()), cluster.logs()
