"""What a worker killed with ``kill -9`` leaves running is killed by another worker of its host.

A job's processes run in sessions of their own, so they outlive their worker. Its
job is recovered once its lease lapses, but nothing on another host can stop them:
a worker of the same host finds them by their environment (``JOBYARD_WORKER_PID``,
``JOBYARD_JOB_TOKEN``) and kills them, both when it starts and while it runs, and
leaves alone those of live workers.
"""

from __future__ import annotations

import os
from uuid import uuid4

import psutil
import pytest

from tests.cluster import Cluster, WorkerProcess
from tests.harness import wait_for

pytestmark = pytest.mark.postgres


def processes_of(token: str) -> list[int]:
    """The pids whose environment has ``JOBYARD_JOB_TOKEN=token``."""
    needle = f"JOBYARD_JOB_TOKEN={token}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as environ:
                if needle in environ.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not reaped yet, does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def running_on(cluster: Cluster, job_id: int, worker: WorkerProcess) -> str:
    """The token of ``job_id``'s attempt on ``worker`` once both its processes run."""
    job = wait_for(
        lambda: (found := cluster.api.job(job_id))["state"] == "running" and found,
        what=f"job {job_id} to run",
    )
    assert job["worker"] == worker.name
    token = f"{worker.name}:{job_id}:{job['attempt']}"
    wait_for(lambda: len(processes_of(token)) >= 2, what="the job's two sleeps")
    return token


def test_a_live_worker_kills_what_a_dead_one_of_its_host_left_running(cluster: Cluster) -> None:
    tag = uuid4().hex[:8]
    doomed = WorkerProcess(
        f"doomed-{tag}", cluster.database_url, cluster.workdir, env=dict(cluster.env),
        args=["--queues", "default"],
    ).start()  # fmt: skip
    cluster.procs.append(doomed)
    keeper = WorkerProcess(
        f"keeper-{tag}", cluster.database_url, cluster.workdir, env=dict(cluster.env),
        args=["--queues", "limited"],
    ).start()  # fmt: skip
    cluster.procs.append(keeper)
    cluster.wait_registered()
    # `sleep` starts a child and a grandchild, and says nothing (no closed pipe kills it).
    orphan, kept = cluster.submit_batch(
        [{"type": "sleep", "args": {"seconds": 300}}, {"type": "sleep", "queue": "limited"}]
    )
    orphan_token = running_on(cluster, orphan, doomed)
    kept_token = running_on(cluster, kept, keeper)
    left = processes_of(orphan_token)

    doomed.kill()
    wait_for(lambda: not processes_of(orphan_token), timeout=30, what="the orphans to die")
    assert not [pid for pid in left if alive(pid)]
    assert "killed the processes a dead worker left running" in keeper.log()
    assert len(processes_of(kept_token)) >= 2  # the live worker's job runs on
    assert cluster.api.job(kept)["state"] == "running"


def test_a_worker_starting_on_the_host_kills_what_a_dead_one_left(cluster: Cluster) -> None:
    tag = uuid4().hex[:8]
    doomed = cluster.add_worker(f"doomed-{tag}")
    cluster.wait_registered()
    [orphan] = cluster.submit_batch([{"type": "sleep", "args": {"seconds": 300}}])
    token = running_on(cluster, orphan, doomed)
    doomed.kill()
    # Its lease lapses and the job ends (no retries): its processes run on meanwhile.
    wait_for(lambda: cluster.api.job(orphan)["state"] == "failed", timeout=60, what="the end")
    assert len(processes_of(token)) >= 2
    later = cluster.add_worker(f"later-{tag}")
    wait_for(lambda: not processes_of(token), timeout=30, what="the orphans to die")
    assert "killed the processes a dead worker left running" in later.log()
