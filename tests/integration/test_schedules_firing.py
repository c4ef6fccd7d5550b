"""Schedules fire jobs and workflow runs; with two servers on PostgreSQL, one leads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness import FIXTURES, Server, wait_for

CONFIG = FIXTURES / "schedules.yaml"


def fired_jobs(server: Server) -> list[dict[str, Any]]:
    query = {"search": "every-second", "type": "note", "per_page": 500, "sort": "id"}
    items: list[dict[str, Any]] = server.client.get("/api/v1/jobs", params=query).json()["items"]
    return [job for job in items if job["name"] == "every-second"]


def is_leader(server: Server) -> bool:
    leads: bool = server.client.get("/healthz").json()["scheduler_leader"]
    return leads


def test_schedules_fire_jobs_and_workflow_runs(database_url: str, tmp_path: Path) -> None:
    server = Server(database_url=database_url, workdir=tmp_path, config=CONFIG).start()
    try:
        jobs = wait_for(lambda: (found := fired_jobs(server)) and len(found) >= 3 and found)
        keys = [job["idempotency_key"] for job in jobs]
        assert len(set(keys)) == len(keys)
        assert all(key.startswith("every-second@") for key in keys)
        server.wait_state(jobs[0]["id"], "succeeded")

        def runs() -> list[dict[str, Any]]:
            page = server.client.get("/api/v1/workflow-runs", params={"workflow": "pair"}).json()
            items: list[dict[str, Any]] = page["items"]
            return items

        run = wait_for(lambda: [r for r in runs() if r["state"] == "succeeded"])[0]
        assert run["trigger"] == "schedule:pair-every-2s"
        assert server.client.get("/healthz").json()["scheduler_leader"] is True
    finally:
        server.stop()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_servers_one_leader_and_no_time_fired_twice(database_url: str, tmp_path: Path) -> None:
    first = Server(database_url=database_url, workdir=tmp_path, config=CONFIG).start()
    second = Server(database_url=database_url, workdir=tmp_path, config=CONFIG).start()
    try:

        def leaders() -> list[Server]:
            return [
                s for s in (first, second) if s.client.get("/healthz").json()["scheduler_leader"]
            ]

        leader = wait_for(lambda: len(found := leaders()) == 1 and found)[0]
        follower = second if leader is first else first
        wait_for(lambda: len(fired_jobs(follower)) >= 4)
        keys = [job["idempotency_key"] for job in fired_jobs(follower)]
        assert len(set(keys)) == len(keys)

        leader.crash()  # the lock goes with its session; the other one takes over
        wait_for(lambda: is_leader(follower), timeout=20)
        before = len(fired_jobs(follower))
        wait_for(lambda: len(fired_jobs(follower)) >= before + 2)
        keys = [job["idempotency_key"] for job in fired_jobs(follower)]
        assert len(set(keys)) == len(keys)
    finally:
        first.stop()
        second.stop()
