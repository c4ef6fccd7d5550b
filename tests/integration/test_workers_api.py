"""Workers as the API shows them, and draining a real ``jobyard worker`` process.

An API-only node and a separate worker process share one database, as on a
cluster. The worker's heartbeat is fast here, so that backends without NOTIFY
see a drain request soon.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from typing import Any

from jobyard.clock import utcnow
from jobyard.events.records import JobHandedBack
from jobyard.models import WorkerInfo
from jobyard.store import Store
from tests.harness import ADMIN, CONFIG, Launcher, Server, shared_server, wait_for

FAST = {"JOBYARD_POLL_INTERVAL": "0.2", "JOBYARD_HEARTBEAT_INTERVAL": "0.3"}
QUIET = {"JOBYARD_PYTHON_POOL": "0", "JOBYARD_KILL_GRACE": "3"}


api = shared_server(args=["--no-worker"])


def start_worker(api: Server, name: str, *args: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "jobyard", "worker",
        "--config", str(CONFIG),
        "--database-url", api.database_url,
        "--name", name,
        *args,
    ]  # fmt: skip
    with (api.workdir / f"worker-{name}.log").open("wb") as log:
        return subprocess.Popen(
            command, env=os.environ | FAST | QUIET, stdout=log, stderr=subprocess.STDOUT
        )


def listed(api: Server, name: str) -> dict[str, Any] | None:
    response = api.client.get("/api/v1/workers")
    assert response.status_code == 200, response.text
    found = [item for item in response.json()["items"] if item["name"] == name]
    return found[0] if found else None


def running_on(api: Server, job_id: int, worker: str) -> bool:
    job = api.job(job_id)
    return job["state"] == "running" and job["worker"] == worker


def hand_back_events(api: Server, job_id: int) -> list[dict[str, Any]]:
    return [e.record.marshal() for e in api.history(job_id) if isinstance(e.record, JobHandedBack)]


def test_a_drain_request_hands_back_the_running_job_and_the_worker_exits(api: Server) -> None:
    name = "drain-me"
    worker = start_worker(
        api, name, "--queues", "default,limited", "--tags", "linux,gpu",
        "--concurrency", "3", "--drain-timeout", "60s",
    )  # fmt: skip
    try:
        long = api.submit("sleep", args={"seconds": 60})
        tagged = api.submit("tagged")  # it needs the tag gpu, which this worker has
        wait_for(lambda: running_on(api, long["id"], name), what="the long job to run")
        assert api.wait_state(tagged["id"], "succeeded")["worker"] == name

        shown = wait_for(lambda: listed(api, name), what="the worker in the list")
        assert shown["state"] == "running"
        assert (shown["tags"], shown["queues"]) == (["gpu", "linux"], ["default", "limited"])
        assert (shown["pid"], shown["concurrency"]) == (worker.pid, 3)
        assert shown["running"] == [long["id"]]
        assert api.client.get(f"/api/v1/workers/{name}").json()["running"] == [long["id"]]

        # The request's timeout (1 s) wins over the worker's own (60 s).
        drained = api.client.post(f"/api/v1/workers/{name}/drain", json={"timeout": "1s"})
        assert drained.status_code == 202, drained.text
        assert drained.json()["state"] == "draining"

        assert worker.wait(timeout=60) == 0
        # Handed back to the queue; this API-only node has no worker to run it again.
        assert api.wait_state(long["id"], "queued")["worker"] is None
        reason = f"worker {name} drained on request; its drain timeout (1 s) passed"
        [event] = hand_back_events(api, long["id"])
        assert (event["worker"], event["reason"]) == (name, reason)
        notes = [line["line"] for line in api.logs(long["id"]) if line["stream"] == "system"]
        assert f"handed back: {reason}" in notes
        gone = api.client.get(f"/api/v1/workers/{name}")
        assert gone.status_code == 404
        assert gone.headers["content-type"] == "application/problem+json"
    finally:
        if worker.poll() is None:
            worker.kill()


def test_sigterm_drains_and_hands_back_with_the_signal_in_the_history(
    sqlite_url: str, launch: Launcher
) -> None:
    api = launch(sqlite_url, args=["--no-worker"])
    worker = start_worker(api, "term-me", "--drain-timeout", "0.5s")
    try:
        job = api.submit("sleep", args={"seconds": 60})
        wait_for(lambda: running_on(api, job["id"], "term-me"), what="the job to run")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
        api.wait_state(job["id"], "queued")
        [event] = hand_back_events(api, job["id"])
        assert (
            event["reason"] == "worker term-me stopped by SIGTERM; its drain timeout (0.5 s) passed"
        )
    finally:
        if worker.poll() is None:
            worker.kill()


def test_a_paused_job_handed_back_stays_paused_until_resumed(api: Server) -> None:
    """A drained worker's paused job is held, not queued: the next worker does not run
    what a user paused. A resume releases it to the queue, as it releases a held job."""
    first = start_worker(api, "pausing", "--drain-timeout", "0.5s")
    second: subprocess.Popen[bytes] | None = None
    try:
        job = api.submit("sleep", args={"seconds": 60})
        wait_for(lambda: running_on(api, job["id"], "pausing"), what="the job to run")
        assert api.client.post(f"/api/v1/jobs/{job['id']}/pause").status_code == 202
        api.wait_state(job["id"], "paused")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
        held = api.wait_state(job["id"], "held")
        assert (held["worker"], held["pid"]) == (None, None)
        [event] = hand_back_events(api, job["id"])
        assert event["state"] == "held"

        second = start_worker(api, "after")
        other = api.submit("echo", args={"text": "after"})
        assert api.wait_state(other["id"], "succeeded")["worker"] == "after"
        assert api.job(job["id"])["state"] == "held"  # the new worker left it alone
        assert api.client.post(f"/api/v1/jobs/{job['id']}/resume").status_code == 200
        wait_for(lambda: running_on(api, job["id"], "after"), what="the resumed job to run")
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.wait(timeout=60)


def test_unknown_and_lost_workers(api: Server) -> None:
    assert api.client.post("/api/v1/workers/nobody/drain").status_code == 404
    long_ago = utcnow() - timedelta(minutes=5)
    info = WorkerInfo("ghost", "elsewhere", 4242, "0.1.0", ["*"], 2, long_ago, long_ago)
    store = Store(api.database_url)
    try:
        store.workers.register_worker(replace(info, lease_timeout=30.0))
    finally:
        store.close()
    shown = listed(api, "ghost")
    assert shown is not None
    assert (shown["state"], shown["running"], shown["tags"]) == ("lost", [], [])
    refused = api.client.post("/api/v1/workers/ghost/drain")
    assert refused.status_code == 409, refused.text
    assert refused.json()["state"] == "lost"
    bad = api.client.post("/api/v1/workers/ghost/drain", json={"timeout": "soon"})
    assert bad.status_code == 422
    now = utcnow()
    alive = WorkerInfo("alive", "elsewhere", 4343, "0.1.0", ["*"], 2, now, now)
    store = Store(api.database_url)
    try:
        store.workers.register_worker(replace(alive, lease_timeout=300.0))
    finally:
        store.close()
    kept = api.client.delete("/api/v1/workers/alive")
    assert kept.status_code == 409, kept.text
    assert kept.json()["state"] == "running"

    def forget(name: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "jobyard", "forget", name, "--server", api.url]
        command += ["--user", ADMIN[0], "--password", ADMIN[1]]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    refused_live = forget("alive")
    assert refused_live.returncode == 4, refused_live.stderr
    assert forget("ghost").stdout == "worker ghost forgotten\n"
    assert listed(api, "ghost") is None
    assert forget("ghost").returncode == 3  # no such worker
    assert api.client.delete("/api/v1/workers/ghost").status_code == 404


def test_a_server_refuses_to_drain_its_own_worker(api: Server, launch: Launcher) -> None:
    embedded = launch(api.database_url, env=FAST | QUIET | {"JOBYARD_WORKER_NAME": "inside"})
    refused = embedded.client.post("/api/v1/workers/inside/drain")
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "embedded in this server" in refused.json()["detail"]
    assert refused.json()["state"] == "running"
    shown = listed(api, "inside")
    assert shown is not None
    assert shown["drain_requested_at"] is None
    health = embedded.client.get("/healthz").json()
    assert (health["status"], health["worker"], health["reasons"]) == ("ok", "inside", [])
    job = embedded.submit("echo", args={"text": "still working"})
    assert embedded.wait_state(job["id"], "succeeded")["worker"] == "inside"


def test_a_server_whose_worker_was_drained_elsewhere_says_it_is_degraded(
    api: Server, launch: Launcher
) -> None:
    embedded = launch(api.database_url, env=FAST | QUIET | {"JOBYARD_WORKER_NAME": "drained"})
    assert embedded.client.get("/healthz").json()["status"] == "ok"
    drained = api.client.post("/api/v1/workers/drained/drain", json={"timeout": "1s"})
    assert drained.status_code == 202, drained.text

    def degraded() -> dict[str, Any] | None:
        health: dict[str, Any] = embedded.client.get("/healthz").json()
        return health if health["status"] == "degraded" else None

    health = wait_for(degraded, timeout=30, what="the drained server to say it is degraded")
    assert health["worker"] is None
    assert "drained" in health["reasons"][0]
    command = [sys.executable, "-m", "jobyard", "health", "--server", embedded.url]
    said = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert said.returncode == 1, said.stderr
    assert said.stdout.startswith("degraded: jobyard ")
    assert said.stderr == f"jobyard: error: the server is degraded: {health['reasons'][0]}\n"
    wait_for(lambda: listed(api, "drained") is None, timeout=30, what="the worker to leave")
