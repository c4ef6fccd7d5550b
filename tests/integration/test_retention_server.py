"""A server prunes on its own; what was pruned shows on the job, and a stream that would
resume inside the removed range is told to reload with a ``reset`` event."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jobyard.client import Client, ResetEvent, StreamReset
from tests.harness import ADMIN, Launcher, wait_for

CONFIG = """
job_types:
  echo:
    command: ["echo", "{text}"]
    params: {text: {type: string, default: hi}}
  sleep:
    command: ["sleep", "60"]
workflows:
  pair:
    nodes:
      quick: {type: echo}
      long: {type: sleep}
retention: {jobs: forever, logs: 1s, events: 1s}
"""


def test_pruned_history_shows_and_resuming_streams_get_a_reset(
    sqlite_url: str, launch: Launcher, tmp_path: Path
) -> None:
    config = tmp_path / "jobyard.yaml"
    config.write_text(CONFIG)
    server = launch(sqlite_url, config=config, env={"JOBYARD_RETENTION_INTERVAL": "0.3"})
    # Held, it cannot end (and lose its events) before its first event is read.
    job = server.submit("echo", args={"text": "soon gone"}, hold=True)
    first = server.history(job["id"])[0].id
    server.act(job["id"], "start", expect=200)

    def pruned() -> dict[str, object] | None:
        shown = server.job(job["id"])
        return shown if shown["logs_pruned_at"] and shown["events_pruned_at"] else None

    shown = wait_for(pruned, timeout=30, what="the job's logs and events pruned")
    assert shown["state"] == "succeeded"  # the job itself stays (jobs: forever)
    assert server.logs(job["id"]) == []
    assert server.history(job["id"]) == []

    resumed = server.stream(
        f"/api/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": str(first)}
    )
    assert [event.event for event in resumed] == ["reset", "close"]
    assert resumed[0].data["job_id"] == job["id"]
    assert resumed[0].data["reason"] == "pruned"
    fresh = server.stream(f"/api/v1/jobs/{job['id']}/events")  # from the start: no reset
    assert [event.event for event in fresh] == ["close"]
    # Following the log from a line it had seen: the lines after it may be gone too.
    logs = f"/api/v1/jobs/{job['id']}/logs?follow=true"
    assert [event.event for event in server.stream(f"{logs}&after=1")] == ["reset", "close"]
    assert [event.event for event in server.stream(logs)] == ["close"]

    [reset] = server.stream("/api/v1/events", headers={"Last-Event-ID": str(first)}, limit=1)
    assert reset.event == "reset"
    assert reset.id is not None
    assert reset.id >= reset.data["pruned_through"] > first

    with Client(server.url, auth=ADMIN) as client:
        assert client.job(job["id"]).logs_pruned_at is not None
    # The CLI says why it prints nothing.
    command = [sys.executable, "-m", "jobyard", "logs", str(job["id"]), "--server", server.url]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert (shown.returncode, shown.stdout) == (0, ""), shown.stderr
    assert shown.stderr.startswith(f"jobyard: job {job['id']}'s log lines were pruned at ")
    with Client(server.url, auth=ADMIN) as client:
        with pytest.raises(StreamReset) as info:
            next(iter(client.all_events(last_event_id=first)))
        assert info.value.event.id == reset.id
        with pytest.raises(StreamReset):
            list(client.events(job["id"], last_event_id=first))
        with pytest.raises(StreamReset):
            list(client.follow_logs(job["id"], after=1))
        # The global stream goes on from the reset's id, live, with no second reset. (A
        # held job: one that ended would lose its events a second later, and the stream
        # only connects at its first read.)
        events = client.all_events(last_event_id=info.value.event.id)
        later = server.submit("echo", args={"text": "after the reset"}, hold=True)
        for event in events:
            assert not isinstance(event, ResetEvent)
            if event.job_id == later["id"]:
                break


def test_a_runs_stream_resuming_past_pruned_events_starts_with_a_reset(
    sqlite_url: str, launch: Launcher, tmp_path: Path
) -> None:
    config = tmp_path / "jobyard.yaml"
    config.write_text(CONFIG)
    server = launch(sqlite_url, config=config, env={"JOBYARD_RETENTION_INTERVAL": "0.3"})
    server.wait_state(server.submit("echo")["id"], "succeeded")
    mark = server.last_event_id()  # a place a client had reached before the run
    run = server.client.post("/api/v1/workflows/pair/runs", json={}).json()
    quick = run["nodes"]["quick"]["job_id"]
    wait_for(lambda: server.job(quick)["events_pruned_at"], timeout=30, what="quick's events gone")
    path = f"/api/v1/workflow-runs/{run['id']}/events"
    # The run goes on: the reset's id is the place it follows on from, live.
    [reset] = server.stream(path, headers={"Last-Event-ID": str(mark)}, limit=1)
    assert reset.event == "reset"
    assert (reset.data["run_id"], reset.data["state"], reset.data["reason"]) == (
        run["id"],
        "running",
        "pruned",
    )
    assert reset.id == reset.data["resume_from"] >= reset.data["pruned_through"] > mark
    with Client(server.url, auth=ADMIN) as client:  # a reconnection from there: no reset
        follow = client.follow_run(run["id"])
        assert next(follow)["state"] == "running"
        assert client.control_run(run["id"], "stop")["state"] == "stopped"
        assert list(follow)[-1]["state"] == "stopped"
    ended = server.stream(path, headers={"Last-Event-ID": str(mark)})
    assert [event.event for event in ended] == ["reset", "close"]
    assert ended[0].id is None
    assert ended[0].data["state"] == ended[1].data["state"] == "stopped"
    after_reset = server.stream(path, headers={"Last-Event-ID": str(reset.id)})
    assert "reset" not in [event.event for event in after_reset]
    assert after_reset[-1].data == {"run_id": run["id"], "state": "stopped"}
