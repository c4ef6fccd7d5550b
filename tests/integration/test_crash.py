"""A ``kill -9`` of the server loses no job and leaves no job process running."""

from __future__ import annotations

from pathlib import Path

from tests.harness import Launcher, wait_for
from tests.processes import all_gone, running_with_processes


def test_kill_9_then_restart_loses_nothing(
    database_url: str, launch: Launcher, tmp_path: Path
) -> None:
    env = {"JOBYARD_CONCURRENCY": "2"}
    server = launch(database_url, env=env)
    doomed = server.submit("sleep", args={"seconds": 60})
    retried = server.submit("once-then-quick", args={"marker": str(tmp_path / "marker")})
    processes = running_with_processes(server, doomed["id"], 3)
    processes += running_with_processes(server, retried["id"], 3)
    queued = [server.submit("echo", args={"text": f"q{i}"}) for i in range(3)]
    assert all(server.job(job["id"])["state"] == "queued" for job in queued)

    server.crash()
    again = launch(database_url, env=env)
    wait_for(lambda: all_gone(processes), timeout=15, what="orphans killed on restart")
    lost = again.wait_state(doomed["id"], "failed")
    assert lost["reason"] == "worker_lost"
    done = again.wait_state(retried["id"], "succeeded")
    assert done["attempt"] == 2
    assert "second" in [line["line"] for line in again.logs(retried["id"])]
    for job in queued:
        assert again.wait_state(job["id"], "succeeded")["exit_code"] == 0
