"""A ``kill -9`` of the server loses no job and leaves no job process running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobyard.models import JobSpec, NewJob, WorkerInfo
from jobyard.runner.local import Runner
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.fires import Fire
from jobyard.worker.loop import NameInUse, Worker, WorkerSettings
from tests.harness import Launcher, wait_for
from tests.processes import all_gone, running_with_processes


@pytest.mark.parametrize("name", [None, "fixed"], ids=["own-name", "same-name"])
def test_kill_9_then_restart_loses_nothing(
    database_url: str, launch: Launcher, tmp_path: Path, name: str | None
) -> None:
    # "same-name": restarted under a fixed --name (as systemd's %H-%i names it), the new
    # worker must not take its dead namesake's jobs for its own (and renew them for ever).
    env = {"JOBYARD_CONCURRENCY": "2"} | ({"JOBYARD_WORKER_NAME": name} if name else {})
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
    said = [line["line"] for line in again.logs(doomed["id"]) if line["stream"] == "system"]
    assert said[-1].startswith(f"attempt 1 lost: its worker {lost['worker']} died"), said
    done = again.wait_state(retried["id"], "succeeded")
    assert done["attempt"] == 2
    assert "second" in [line["line"] for line in again.logs(retried["id"])]
    for job in queued:
        assert again.wait_state(job["id"], "succeeded")["exit_code"] == 0


def test_the_fire_missed_in_a_crash_runs_though_the_last_run_died_with_it(
    database_url: str, launch: Launcher, tmp_path: Path
) -> None:
    """Restarted before the lease of the schedule's last job lapsed: its worker, dead, is
    known as this process starts, and that job recovered before the scheduler's first
    pass; the fire missed meanwhile is owed (``misfire: run_once``), not skipped for it."""
    config = tmp_path / "jobyard.yaml"
    config.write_text(
        "job_types:\n  nap: {command: [sleep, '60']}\n"
        "schedules:\n  nap: {job_type: nap, every: 2s}\n"
    )
    server = launch(database_url, config=config)
    store = Store(database_url)
    try:
        fired = wait_for(lambda: store.schedules.last_started_fire("nap"), what="a fire")
        assert fired is not None
        assert fired.job_id is not None
        server.wait_state(fired.job_id, "running")
        server.crash()
        before = store.schedules.last_fire("nap")  # a fire skipped for the job, perhaps
        assert before is not None
        owed = before.fire_time + timedelta(seconds=2)
        wait_for(lambda: datetime.now(UTC) > owed, what="a fire time missed")
        again = launch(database_url, config=config)

        def fired_again() -> Fire | None:
            fire = store.schedules.last_fire("nap")
            return fire if fire is not None and fire.fire_time >= owed else None

        after = wait_for(fired_again, what="the missed fire")
    finally:
        store.close()
    assert again.job(fired.job_id)["reason"] == "worker_lost"
    assert after.job_id is not None, "skipped for the job of the dead worker"


def test_lines_stored_before_a_crash_keep_their_numbers(
    database_url: str, launch: Launcher
) -> None:
    """A job printing faster than its lines are stored has a backlog of many batches; each
    stores the job's count of lines with it. Only the last did: after a crash, the note of
    the lost attempt (and the next attempt's lines) took numbers stored lines had, a page
    of the log mixed them, and a trim of the next attempt's tail deleted the first's."""
    server = launch(database_url)
    job_id = server.submit("flood", args={"count": 300_000})["id"]
    wait_for(lambda: server.logs(job_id, after=3000, limit=1), what="3,000 lines stored")
    server.crash()
    store = Store(database_url)
    try:
        counted = store.jobs.get_job(job_id)
        assert counted is not None
        assert store.jobs.log_lines(job_id, counted.log_lines, 5) == []  # none past its count
        stored = counted.log_lines
    finally:
        store.close()
    again = launch(database_url)
    lost = again.wait_state(job_id, "failed")
    assert lost["reason"] == "worker_lost"
    tail = again.logs(job_id, after=stored - 1)
    assert [(line["seq"], line["stream"]) for line in tail] == [
        (stored, "stdout"),
        (stored + 1, "system"),
    ]
    assert tail[1]["line"].startswith("attempt 1 lost")


def test_a_job_printing_faster_than_it_is_stored_is_handed_back_at_a_stop(
    sqlite_url: str, launch: Launcher
) -> None:
    """Its output's reader waits for room in the backlog; the hand-back's wait for the
    job's end wrote none, so the end (seen once the output is read) never came: the
    worker waited out two kill graces and said the end was not confirmed."""
    server = launch(sqlite_url, env={"JOBYARD_DRAIN_TIMEOUT": "1"})
    job_id = server.submit("flood", args={"count": 30_000_000})["id"]
    wait_for(lambda: server.logs(job_id, after=10_000, limit=1), what="10,000 lines stored")
    server.stop()
    again = launch(sqlite_url, args=["--no-worker"])  # the job stays as the stop left it
    job = again.job(job_id)
    said = [line["line"] for line in again.logs(job_id, after=job["resources"]["log_lines"] - 3)]
    assert said[-1].startswith("handed back: "), said
    assert not any("not confirmed" in line for line in said), said
    assert (job["state"], job["attempt"]) == ("queued", 0)  # given back: no attempt spent


def test_a_second_live_worker_of_the_same_name_is_refused(
    sqlite_url: str, launch: Launcher
) -> None:
    server = launch(sqlite_url, env={"JOBYARD_WORKER_NAME": "fixed"})
    command = [sys.executable, "-m", "jobyard", "worker", "--name", "fixed"]
    command += ["--database-url", sqlite_url]
    twin = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert twin.returncode == 1, twin.stderr
    said = twin.stderr.strip().splitlines()[-1]
    assert said.startswith("jobyard: error: worker name 'fixed' is in use by pid ")
    # A whole server of that name says the same in one line, before it starts anything.
    command = [sys.executable, "-m", "jobyard", "serve", "--port", "0", "--name", "fixed"]
    command += ["--database-url", sqlite_url]
    environ = os.environ | {"JOBYARD_ADMIN_PASSWORD": ""}
    served = subprocess.run(command, capture_output=True, text=True, timeout=60, env=environ)
    assert served.returncode == 1, served.stderr
    assert served.stderr.strip().splitlines() == [said]
    # The first one is untouched: still listed, still running jobs.
    listed = server.client.get("/api/v1/workers").json()["items"]
    assert [(w["name"], w["state"]) for w in listed] == [("fixed", "running")]
    job = server.submit("echo", args={"text": "still here"})
    assert server.wait_state(job["id"], "succeeded")["worker"] == "fixed"


def test_a_dead_namesake_that_had_this_pid_is_not_taken_for_this_process(tmp_path: Path) -> None:
    # A container's worker is process 1 each time it starts: its namesake's row, from
    # before this process started, names this very pid.
    store = Store(f"sqlite:///{tmp_path / 'pid.db'}")
    store.migrate()
    now = datetime.now(UTC)
    host, before = socket.gethostname(), now - timedelta(hours=1)
    dead = WorkerInfo("fixed", host, os.getpid(), "0", ["*"], 1, before, before)
    store.workers.register_worker(dead)
    new = NewJob("t", {}, JobSpec(argv=["true"]), "default", 0, JobState.QUEUED)
    store.jobs.add_jobs([new], now)
    [left] = store.queue.claim_jobs("fixed", host, None, 1, now, now + timedelta(hours=1)).jobs
    settings = WorkerSettings(name="fixed", concurrency=1, poll_interval=0.05)
    worker = Worker(store, Runner(python_pool=0), settings)
    worker.start()
    try:
        # Started, and took the dead namesake's job for what it is: lost, not its own.
        lost = store.jobs.get_job(left.id)
        assert lost is not None
        assert lost.state is JobState.FAILED
        assert lost.reason == "worker_lost"
        # A second worker object of the name in this process is a live namesake.
        twin = Worker(store, Runner(python_pool=0), settings)
        with pytest.raises(NameInUse, match="'fixed' is in use by pid"):
            twin.start()
    finally:
        worker.stop()
        store.close()
