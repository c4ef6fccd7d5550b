"""Jobs that misbehave: flood their output, fork many children, ignore SIGTERM, die
while paused, print bytes that are not text. Each ends once and leaves no process.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobyard.store import Store
from tests.cluster import state_events
from tests.faults.invariants import check_jobs, holders, in_order, lines_kept, tokens
from tests.harness import Server, shared_server, wait_for

CONFIG = Path(__file__).parent / "jobyard.yaml"
LOG_CAP = 100_000  # bytes of output kept per job
server = shared_server(
    backends=["sqlite"],
    config=CONFIG,
    env={"JOBYARD_LOG_CAP": str(LOG_CAP), "JOBYARD_CONCURRENCY": "4"},
)


@pytest.fixture(scope="module")
def store(server: Server) -> Iterator[Store]:
    opened = Store(server.database_url)
    yield opened
    opened.close()


def run(server: Server, type_: str, **args: Any) -> int:
    job_id: int = server.submit(type_, args=args)["id"]
    return job_id


def processes(store: Store, job_id: int) -> int:
    """How many live processes the job has now (none before its claim is stored)."""
    return len(holders(tokens(state_events(store, [job_id]))))


def stdout(server: Server, job_id: int) -> list[str]:
    lines = server.logs(job_id, limit=1000)
    return [line["line"] for line in lines if line["stream"] == "stdout"]


def test_a_flood_is_kept_under_the_log_cap(server: Server, store: Store) -> None:
    job_id = run(server, "flood", count=200_000)
    done = server.wait_state(job_id, "succeeded", "failed", timeout=120)
    assert done["state"] == "succeeded", done
    check_jobs(store, [job_id])
    kept = store.jobs.log_lines(job_id, limit=1_000_000)
    size = sum(len(line.line.encode()) + 1 for line in kept if line.stream == "stdout")
    assert size <= LOG_CAP
    printed = [line.line for line in kept if line.stream == "stdout"]
    assert printed[0] == "line 0"
    assert printed[-1] == "line 199999"
    assert any("log cap" in line.line for line in kept if line.stream == "system")


def test_a_killed_job_takes_all_its_children(server: Server, store: Store) -> None:
    job_id = run(server, "forker", count=20)
    wait_for(lambda: stdout(server, job_id) == ["started"], what="the children to start")
    wait_for(lambda: processes(store, job_id) >= 41, what="41 processes of the job")
    server.act(job_id, "kill", expect=202)
    assert server.wait_state(job_id, "killed")["state"] == "killed"
    check_jobs(store, [job_id])


def test_children_left_behind_by_a_job_that_ended_are_killed(server: Server, store: Store) -> None:
    job_id = run(server, "deserter")
    assert server.wait_state(job_id, "succeeded", "failed")["state"] == "succeeded"
    check_jobs(store, [job_id])


def test_a_job_ignoring_sigterm_is_killed_after_its_grace(server: Server, store: Store) -> None:
    job_id = run(server, "stubborn")
    # Read again at each look: right after the submit, the claim may not be stored yet.
    wait_for(lambda: processes(store, job_id) >= 3, what="the job's processes")
    asked = time.monotonic()
    server.act(job_id, "kill", expect=202)
    server.wait_state(job_id, "killed", timeout=30)
    assert time.monotonic() - asked < 15  # the grace is 1 s: SIGKILL came
    check_jobs(store, [job_id])


def test_a_job_that_dies_while_paused_ends_once(server: Server, store: Store) -> None:
    job_id = run(server, "sleep", seconds=60)
    # Read again at each look: right after the submit, the claim may not be stored yet.
    wait_for(lambda: processes(store, job_id) >= 3, what="the job's processes")
    pid = wait_for(lambda: server.job(job_id)["pid"], what="the job's pid")
    server.act(job_id, "pause", expect=202)
    server.wait_state(job_id, "paused")
    os.kill(pid, signal.SIGKILL)  # its leader dies, stopped, from outside
    ended = server.wait_state(job_id, "failed", "killed", "succeeded", timeout=60)
    assert ended["state"] != "succeeded", ended
    check_jobs(store, [job_id])


def test_output_that_is_not_text_is_kept_and_shown(server: Server, store: Store) -> None:
    before = server.last_event_id()
    job_id = run(server, "binary")
    assert server.wait_state(job_id, "succeeded", "failed")["state"] == "succeeded"
    check_jobs(store, [job_id])
    printed = stdout(server, job_id)
    assert len(printed) == 3, printed
    assert printed[2] == "last"
    assert printed[0].startswith("nul")
    assert printed[0].endswith("byte")
    assert printed[1].startswith("bad ")
    assert printed[1].endswith(" utf8")
    assert server.client.get(f"/api/v1/jobs/{job_id}").status_code == 200
    page = server.client.get(f"/jobs/{job_id}")
    assert page.status_code == 200
    events = server.stream(f"/api/v1/jobs/{job_id}/events")
    shown = [event.data["line"] for event in events if event.event == "log"]
    assert [line for line in shown if not line.startswith("attempt")][-3:] == printed
    in_order([event.id for event in events if event.event != "close"])
    lines_kept(store, job_id, store.jobs.log_lines(job_id))
    assert server.last_event_id() > before
