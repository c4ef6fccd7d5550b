"""Pausing a queue: running jobs go on, nothing new starts until it is resumed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Server


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    server = Server(database_url=database_url, workdir=tmp_path).start()
    yield server
    server.stop()


def test_a_paused_queue_dispatches_nothing_new(server: Server) -> None:
    running = server.submit("sleep", args={"seconds": 60})
    server.wait_state(running["id"], "running")
    paused = server.client.post("/api/v1/queues/default/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    waiting = server.submit("echo", args={"text": "later"})
    # A negative can only be watched for a while: several worker polls (0.2 s) pass.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        assert server.job(waiting["id"])["state"] == "queued"
        time.sleep(0.1)
    assert server.job(running["id"])["state"] == "running"
    listed = {q["name"]: q for q in server.client.get("/api/v1/queues").json()["items"]}
    assert listed["default"]["paused"] is True
    assert listed["default"]["jobs"] == {"running": 1, "queued": 1}

    assert server.client.post("/api/v1/queues/default/resume").json()["paused"] is False
    server.wait_state(waiting["id"], "succeeded")
    assert server.client.post("/api/v1/queues/nope/pause").status_code == 404
    server.act(running["id"], "kill")
