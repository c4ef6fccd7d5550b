"""Queues: a job names a declared one, and pausing a queue holds back what has not started."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from jobyard.client import Client, Invalid
from jobyard.events.records import JobStateRecord
from jobyard.states import JobState
from tests.harness import ADMIN, CONFIG, Launcher, Server, shared_server

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


# tests/fixtures/jobyard.yaml declares the queues limited and queue-for-the-nightly-exports.
TYPO = "queue 'limted' is not declared under queues; did you mean 'limited'?"


def _count(server: Server, name: str) -> int:
    total: int = server.client.get("/api/v1/jobs", params={"search": name}).json()["total"]
    return total


def test_a_job_naming_an_undeclared_queue_is_refused_with_a_did_you_mean(server: Server) -> None:
    name = f"typo-{uuid.uuid4().hex[:8]}"
    body = {"type": "echo", "args": {"text": "x"}, "name": name, "hold": True}
    refused = server.client.post("/api/v1/jobs", json=body | {"queue": "limted"})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["detail"] == "the submission is invalid"
    assert problem["errors"] == [{"field": "queue", "message": TYPO}]
    # Every bad field at once: the arguments' problems come with the queue's.
    both = server.client.post("/api/v1/jobs", json=body | {"args": {}, "queue": "nowhere"})
    assert both.status_code == 422, both.text
    fields = {e["field"]: e["message"] for e in both.json()["errors"]}
    assert fields["queue"].startswith("queue 'nowhere' is not declared under queues; known: ")
    assert "args.text" in fields
    assert _count(server, name) == 0
    for declared in ("default", "limited", "queue-for-the-nightly-exports"):
        server.submit("echo", args={"text": "x"}, name=name, hold=True, queue=declared)
    assert _count(server, name) == 3


def test_a_batch_names_the_job_whose_queue_is_undeclared_and_stores_none(server: Server) -> None:
    name = f"batch-{uuid.uuid4().hex[:8]}"
    job = {"type": "echo", "args": {"text": "x"}, "name": name, "hold": True}
    jobs = [job | {"queue": "limited"}, job, job | {"queue": "limted"}]
    refused = server.client.post("/api/v1/jobs/batch", json={"jobs": jobs})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [{"field": "jobs.2.queue", "message": TYPO}]
    assert _count(server, name) == 0


def test_the_client_the_cli_and_the_submit_form_say_which_queue_is_undeclared(
    server: Server,
) -> None:
    with Client(server.url, auth=ADMIN) as client, pytest.raises(Invalid) as caught:
        client.submit("echo", {"text": "x"}, queue="limted", hold=True)
    assert caught.value.status == 422
    assert caught.value.errors == [{"field": "queue", "message": TYPO}]

    cli = subprocess.run(
        [sys.executable, "-m", "jobyard", "submit", "echo", "text=x", "--queue", "limted"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"JOBYARD_SERVER": server.url},
        check=False,
    )
    assert cli.returncode == 2, (cli.stdout, cli.stderr)
    assert cli.stderr.strip() == f"jobyard: error: the submission is invalid (queue: {TYPO})"

    page = server.client.post("/submit/echo", data={"text": "x", "_queue": "limted"})
    assert page.status_code == 200
    assert 'id="error-_queue"' in page.text
    assert TYPO.replace("'", "&#39;") in page.text  # as Jinja escapes it


def test_a_queue_the_file_pauses_starts_paused_and_a_resume_outlasts_a_restart(
    tmp_path: Path,
) -> None:
    config = tmp_path / "jobyard.yaml"
    text = CONFIG.read_text()
    assert "queues:\n" in text
    config.write_text(text.replace("queues:\n", "queues:\n  parked: {paused: true}\n", 1))
    launch = Launcher(tmp_path)
    url = f"sqlite:///{tmp_path}/jobs.db"
    try:
        first = launch(url, config=config)
        waiting = first.submit("echo", args={"text": "later"}, queue="parked")
        passed = first.submit("echo", args={"text": "passed"})
        first.wait_state(passed["id"], "succeeded")
        assert first.job(waiting["id"])["state"] == "queued"
        assert _queues(first)["parked"] is True
        assert first.client.post("/api/v1/queues/parked/resume").status_code == 200
        first.wait_state(waiting["id"], "succeeded")
        first.stop()
        again = launch(url, config=config)  # the file still says paused: the resume stays
        assert _queues(again)["parked"] is False
    finally:
        launch.stop_all()


def _queues(server: Server) -> dict[str, bool]:
    items = server.client.get("/api/v1/queues").json()["items"]
    return {queue["name"]: queue["paused"] for queue in items}
