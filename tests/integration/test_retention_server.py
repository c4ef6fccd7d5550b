"""A server prunes on its own; what was pruned shows on the job, and a stream that would
resume inside the removed range is told to reload with a ``reset`` event."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobyard.client import Client, ResetEvent, StreamReset
from tests.harness import ADMIN, Launcher, wait_for

CONFIG = """
job_types:
  echo:
    command: ["echo", "{text}"]
    params: {text: {type: string, default: hi}}
retention: {jobs: forever, logs: 1s, events: 1s}
"""


def test_pruned_history_shows_and_resuming_streams_get_a_reset(
    sqlite_url: str, launch: Launcher, tmp_path: Path
) -> None:
    config = tmp_path / "jobyard.yaml"
    config.write_text(CONFIG)
    server = launch(sqlite_url, config=config, env={"JOBYARD_RETENTION_INTERVAL": "0.3"})
    job = server.submit("echo", args={"text": "soon gone"})
    first = server.history(job["id"])[0].id

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
        with pytest.raises(StreamReset) as info:
            next(iter(client.all_events(last_event_id=first)))
        assert info.value.event.id == reset.id
        with pytest.raises(StreamReset):
            list(client.events(job["id"], last_event_id=first))
        with pytest.raises(StreamReset):
            list(client.follow_logs(job["id"], after=1))
        # The global stream goes on from the reset's id, live, with no second reset.
        events = client.all_events(last_event_id=info.value.event.id)
        later = server.submit("echo", args={"text": "after the reset"})
        for event in events:
            assert not isinstance(event, ResetEvent)
            if event.job_id == later["id"]:
                break
