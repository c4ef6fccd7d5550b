"""Removing and restarting jobs on a real server, on SQLite and on the real database servers."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobyard.store import Store
from tests.harness import ADMIN, Server, Sse, read_sse, run_in, start_run, wait_for
from tests.processes import all_gone, running_with_processes
from tests.stores import rows_of

NOTHING = dict.fromkeys(("job_events", "job_samples", "job_dependencies"), 0)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    server = Server(database_url=database_url, workdir=tmp_path).start()
    yield server
    server.stop()


def test_a_force_removed_job_leaves_no_row_and_its_run_writes_no_more(
    database_url: str, tmp_path: Path
) -> None:
    # One slot: the next job can only start once the removed job's run is over.
    env = {"JOBYARD_CONCURRENCY": "1"}
    server = Server(database_url=database_url, workdir=tmp_path, env=env).start()
    store = Store(database_url)
    try:
        job = server.submit("tick", args={"count": 100_000, "pause": 0.05})
        processes = running_with_processes(server, job["id"], 1)
        wait_for(lambda: len(server.logs(job["id"])) > 5, what="a few lines")
        wait_for(lambda: store.monitor.samples(job["id"]), what="a resource sample")
        removed = server.client.delete(f"/api/v1/jobs/{job['id']}", params={"force": "true"})
        assert removed.status_code == 204, removed.text
        assert server.client.get(f"/api/v1/jobs/{job['id']}").status_code == 404
        wait_for(lambda: all_gone(processes), timeout=20, what="the removed job's processes")
        after = server.submit("echo", args={"text": "next"})
        server.wait_state(after["id"], "succeeded", timeout=30)  # the run gave its slot back
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # and nothing of it shows up afterwards
            assert rows_of(store, job["id"]) == NOTHING
            assert store.events.feed(0, job_id=job["id"]) == []
            assert store.jobs.get_job(job["id"]) is None
            time.sleep(0.1)
    finally:
        store.close()
        server.stop()


def restart(server: Server, job_id: int, **body: Any) -> httpx.Response:
    return server.client.post(f"/api/v1/jobs/{job_id}/restart", json=body)


def test_a_job_is_restarted_once_and_its_restart_is_named(server: Server) -> None:
    old = server.submit("echo", args={"text": "once"})
    server.wait_state(old["id"], "succeeded")
    first = restart(server, old["id"])
    assert first.status_code == 201, first.text
    again = restart(server, old["id"])
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    problem = again.json()
    assert problem["restarted_as"] == first.json()["id"]
    assert f"already restarted as job {first.json()['id']}" in problem["detail"]
    assert server.job(old["id"])["restarted_as"] == first.json()["id"]
    server.wait_state(first.json()["id"], "succeeded")
    newest = restart(server, first.json()["id"])  # a deliberate re-run restarts the newest
    assert newest.status_code == 201, newest.text
    assert newest.json()["restarted_from"] == first.json()["id"]


def test_concurrent_restarts_of_one_job_make_one_job(server: Server) -> None:
    old = server.submit("echo", args={"text": "race"})
    server.wait_state(old["id"], "succeeded")
    barrier = threading.Barrier(4)
    answers: list[httpx.Response] = []

    def race() -> None:
        with httpx.Client(base_url=server.url, timeout=30, auth=ADMIN) as client:
            barrier.wait()
            answers.append(client.post(f"/api/v1/jobs/{old['id']}/restart", json={}))

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]
    [made] = [a.json()["id"] for a in answers if a.status_code == 201]
    assert {a.json()["restarted_as"] for a in answers if a.status_code == 409} == {made}
    jobs = server.client.get("/api/v1/jobs", params={"type": "echo"}).json()
    assert jobs["total"] == 2


def test_restart_follows_the_new_jobs_events_like_submit(server: Server) -> None:
    old = server.submit("echo", args={"text": "hello"})
    server.wait_state(old["id"], "succeeded")
    path = f"/api/v1/jobs/{old['id']}/restart"
    with server.client.stream("POST", path, json={"follow": True}) as response:
        assert response.status_code == 201
        assert response.headers["content-type"].startswith("text/event-stream")
        new_id = int(response.headers["location"].rsplit("/", 1)[1])
        events = list(read_sse(response.iter_lines()))
    assert new_id != old["id"]
    assert {event.data["job_id"] for event in events} == {new_id}
    assert events[-1] == Sse(None, "close", {"job_id": new_id, "state": "succeeded"})
    assert any(e.event == "log" and e.data["line"] == "hello" for e in events)
    accepts = server.stream(
        f"/api/v1/jobs/{new_id}/restart",
        method="POST",
        headers={"Accept": "text/event-stream"},
    )
    assert accepts[-1].event == "close"
    assert accepts[-1].data["state"] == "succeeded"
    assert server.job(new_id)["restarted_as"] == accepts[-1].data["job_id"]


def test_a_failed_run_runs_again_while_its_restarted_node_does(server: Server) -> None:
    run = start_run(server, "broken")
    failed = run_in(server, run["id"], "failed")
    assert failed["finished_at"] is not None
    collected: list[Sse] = []
    ready = threading.Event()

    def second_end(_: Sse) -> bool:  # called once the event is collected
        return [e.event for e in collected].count("workflow_finished") == 2

    def listen() -> None:  # from the first event on: the run's whole story
        with (
            contextlib.suppress(httpx.HTTPError),  # the server stopped: the test failed
            server.client.stream("GET", "/api/v1/events") as response,
        ):
            ready.set()
            for event in read_sse(response.iter_lines(), stop=second_end):
                collected.append(event)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(10)
    wait_for(lambda: server.client.get("/healthz").json()["stream_subscribers"] >= 1)
    bad = failed["nodes"]["bad"]["job_id"]
    again = restart(server, bad)  # still code 5: it fails again, after its retries
    assert again.status_code == 201, again.text
    running = server.client.get(f"/api/v1/workflow-runs/{run['id']}").json()
    assert running["state"] == "running"
    assert running["finished_at"] is None
    assert running["nodes"]["bad"]["job_id"] == again.json()["id"]
    ended = run_in(server, run["id"], "failed")
    assert ended["finished_at"] is not None
    listener.join(60)
    assert not listener.is_alive()
    workflow = [e for e in collected if e.event.startswith("workflow_") and "run_id" in e.data]
    assert [(e.event, e.data.get("state")) for e in workflow] == [
        ("workflow_started", None),
        ("workflow_finished", "failed"),
        ("workflow_reopened", "running"),
        ("workflow_finished", "failed"),
    ]
    assert {e.data["run_id"] for e in workflow} == {run["id"]}
    assert workflow[2].data["job_id"] == again.json()["id"]
