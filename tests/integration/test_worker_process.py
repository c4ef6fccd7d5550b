"""An API-only node and a separate ``jobyard worker`` process share one database."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jobyard.store import Store
from tests.cluster import WorkerProcess
from tests.harness import CONFIG, Launcher, wait_for


def test_a_separate_worker_runs_what_an_api_only_node_accepts(
    database_url: str, launch: Launcher, tmp_path: Path
) -> None:
    api = launch(database_url, args=["--no-worker"])
    worker = None
    try:
        assert api.client.get("/healthz").json()["worker"] is None
        job = api.submit("lines", args={"count": 3})
        assert api.job(job["id"])["state"] == "queued"
        command = [
            sys.executable, "-m", "jobyard", "worker",
            "--config", str(CONFIG),
            "--database-url", database_url,
            "--name", "separate-worker",
        ]  # fmt: skip
        with (tmp_path / "worker.log").open("wb") as log:
            worker = subprocess.Popen(
                command,
                env=os.environ | {"JOBYARD_POLL_INTERVAL": "0.2"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        done = api.wait_state(job["id"], "succeeded")
        assert done["worker"] == "separate-worker"
        assert [line["line"] for line in api.logs(job["id"]) if line["stream"] == "stdout"] == [
            "line 0",
            "line 1",
            "line 2",
        ]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()


def test_a_worker_of_a_queue_the_file_does_not_declare_says_so(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "jobyard", "worker",
        "--config", str(CONFIG),
        "--database-url", f"sqlite:///{tmp_path / 'jobs.db'}",
        "--queues", "limited,fsat",
    ]  # fmt: skip
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        said = wait_for(  # it runs on meanwhile: its file may be behind the API node's
            lambda: next((x for x in log.read_text().splitlines() if "not declare" in x), None),
            timeout=30,
            what="the worker's warning",
        )
        assert "serving queues the configuration does not declare: fsat (declared: " in said
        assert "limited" in said.split("declared: ")[1]
    finally:
        worker.kill()
        worker.wait(timeout=30)


@pytest.mark.parametrize("taken", [False, True], ids=["forgotten", "name-taken"])
def test_a_worker_forgotten_while_it_runs_hands_back_its_jobs_and_stops(
    database_url: str, launch: Launcher, tmp_path: Path, taken: bool
) -> None:
    """Its row removed (``jobyard forget`` of a worker frozen past its lease), or taken
    by a namesake started since: it must not go on claiming unlisted."""
    api = launch(database_url, args=["--no-worker"])
    store = Store(database_url)
    ghost = WorkerProcess(
        "ghost", database_url, tmp_path, env={"JOBYARD_HEARTBEAT_INTERVAL": "0.5"}
    )
    worker = ghost.start().proc
    assert worker is not None
    try:
        job = api.submit("sleep", args={"seconds": 60})
        assert api.wait_state(job["id"], "running")["worker"] == "ghost"
        registered = wait_for(lambda: store.workers.get_worker("ghost"), what="its row")
        store.workers.unregister_worker("ghost")  # what a forget does, once it is lost
        if taken:
            namesake = dataclasses.replace(registered, host="elsewhere", pid=registered.pid + 1)
            store.workers.register_worker(namesake)
        assert worker.wait(timeout=30) == 1, ghost.log()
        said = ghost.log()
        assert ("was taken by pid" if taken else "was forgotten while it ran") in said
        back = api.wait_state(job["id"], "queued")
        assert (back["worker"], back["attempt"]) == (None, 0)  # handed back, not lost
        # The namesake's row is left alone; a forgotten worker's is not written again.
        row = store.workers.get_worker("ghost")
        assert (row.host if row else None) == ("elsewhere" if taken else None)
    finally:
        if ghost.alive:
            ghost.kill()
        store.close()


@pytest.mark.parametrize(
    ("queues", "said"),
    [(",,", "no queue given"), ("default,bad/q", "no queue can be named 'bad/q'")],
)
def test_a_worker_of_no_queue_or_of_a_name_no_queue_can_have_is_refused(
    tmp_path: Path, queues: str, said: str
) -> None:
    command = [
        sys.executable, "-m", "jobyard", "worker",
        "--database-url", f"sqlite:///{tmp_path / 'jobs.db'}",
        "--queues", queues,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"jobyard: error: --queues / JOBYARD_QUEUES: {said}: ")
