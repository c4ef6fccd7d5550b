"""Pausing a queue: running jobs go on, nothing new starts until it is resumed."""

from __future__ import annotations

from jobyard.events.records import JobStateRecord
from jobyard.states import JobState
from tests.harness import Server, shared_server

server = shared_server()


def test_a_paused_queue_dispatches_nothing_new(server: Server) -> None:
    running = server.submit("sleep", args={"seconds": 60})
    server.wait_state(running["id"], "running")
    paused = server.client.post("/api/v1/queues/default/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    waiting = server.submit("echo", args={"text": "later"})
    # Claims take the oldest ready job first, skipping paused queues: once a later job
    # of another queue has run, the worker has passed the waiting one by, with free slots.
    passed = server.submit("echo", args={"text": "passed"}, queue="limited")
    server.wait_state(passed["id"], "succeeded")
    assert server.job(waiting["id"])["state"] == "queued"
    history = server.history(waiting["id"])
    assert [e.record.state for e in history if isinstance(e.record, JobStateRecord)] == [
        JobState.QUEUED
    ]
    assert server.job(running["id"])["state"] == "running"
    listed = {q["name"]: q for q in server.client.get("/api/v1/queues").json()["items"]}
    assert listed["default"]["paused"] is True
    assert listed["default"]["jobs"] == {"running": 1, "queued": 1}

    assert server.client.post("/api/v1/queues/default/resume").json()["paused"] is False
    server.wait_state(waiting["id"], "succeeded")
    assert server.client.post("/api/v1/queues/nope/pause").status_code == 404
    server.act(running["id"], "kill")
