"""``kill -9`` of the embedded server at chosen points (``JOBYARD_FAULT``), then a restart.

Each test arms one point, makes the server reach it (it kills itself there),
starts the server again without the fault and checks the invariants: what was
not committed is done again, what was committed is not done twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jobyard.store import Store
from tests.faults.invariants import check_jobs, ended
from tests.harness import Launcher, Server, start_run, wait_for

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
ENV = {"JOBYARD_CONCURRENCY": "2"}

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True)


def killed_itself(server: Server) -> None:
    """Wait until the server died of its own ``SIGKILL``."""
    assert server.proc is not None
    code = wait_for(
        lambda: server.proc.poll() if server.proc else None, timeout=60, what="the kill"
    )
    assert code == -9, server.log()
    server.client.close()


def faulty(launch: Launcher, database_url: str, point: str) -> Server:
    return launch(database_url, env=ENV | {"JOBYARD_FAULT": point})


def held(server: Server, type_: str, **args: Any) -> int:
    """Submit a held job; the id (its start may kill the server before it answers)."""
    job_id: int = server.submit(type_, args=args, hold=True)["id"]
    return job_id


def start(server: Server, job_id: int) -> None:
    """Start the job; the answer may never come (the server dies on the way)."""
    with contextlib.suppress(httpx.TransportError):
        server.act(job_id, "start")


@contextlib.contextmanager
def opened(url: str) -> Iterator[Store]:
    store = Store(url)
    try:
        yield store
    finally:
        store.close()


def test_a_claim_killed_before_it_commits_is_made_again(
    database_url: str, launch: Launcher
) -> None:
    server = faulty(launch, database_url, "claim.before_commit")
    job = {"id": held(server, "echo", text="claimed once")}
    start(server, job["id"])
    killed_itself(server)
    again = launch(database_url, env=ENV)
    done = again.wait_state(job["id"], "succeeded")
    assert done["attempt"] == 1  # the lost claim left no trace
    printed = [line["line"] for line in again.logs(job["id"]) if line["stream"] == "stdout"]
    assert printed == ["claimed once"]
    with opened(database_url) as store:
        check_jobs(store, [job["id"]])


def test_an_end_killed_before_it_commits_runs_the_attempt_again(
    database_url: str, launch: Launcher
) -> None:
    server = faulty(launch, database_url, "end.before_commit")
    job = {"id": held(server, "nap", seconds=0.1)}  # retried when its worker is lost
    start(server, job["id"])
    killed_itself(server)
    again = launch(database_url, env=ENV)
    done = again.wait_state(job["id"], "succeeded")
    assert done["attempt"] == 2
    with opened(database_url) as store:
        history = check_jobs(store, [job["id"]])
    states = [event.state for event in history[job["id"]]]
    assert states[-2:] == ["running", "succeeded"]


def test_an_end_killed_after_it_commits_is_not_run_again(
    database_url: str, launch: Launcher
) -> None:
    server = faulty(launch, database_url, "end.after_commit")
    job = {"id": held(server, "lines", count=3)}
    start(server, job["id"])
    killed_itself(server)
    with opened(database_url) as store:
        assert ended(store, [job["id"]])[job["id"]].state.value == "succeeded"
    queued = launch(database_url, env=ENV).submit("echo", args={"text": "after"})
    with opened(database_url) as store:
        check_jobs(store, [job["id"], queued["id"]])
        assert store.jobs.get_job(job["id"]).attempt == 1  # type: ignore[union-attr]
        outputs = [line for line in store.jobs.log_lines(job["id"]) if line.stream != "system"]
        assert len(outputs) == 6


def test_a_workflow_killed_as_an_end_settles_runs_the_node_again(
    database_url: str, launch: Launcher
) -> None:
    """The worker settles a node's edges in its end's transaction: the kill loses the end
    with them, and the node runs again (its worker was lost; it has retries left)."""
    server = faulty(launch, database_url, "end.settle")
    # the node can end, and the kill come, before the start's answer is sent
    with contextlib.suppress(httpx.TransportError):
        start_run(server, "sturdy")
    killed_itself(server)
    again = launch(database_url, env=ENV)
    response = again.client.get("/api/v1/workflow-runs", params={"workflow": "sturdy"})
    assert response.status_code == 200, response.text
    runs = response.json()
    assert runs["total"] == 1, runs
    run = runs["items"][0]
    finished = wait_for(
        lambda: (
            (r := again.client.get(f"/api/v1/workflow-runs/{run['id']}").json())["state"]
            in ("succeeded", "failed")
            and r
        ),
        timeout=90,
        what="the run to finish",
    )
    assert finished["state"] == "succeeded", again.log()
    with opened(database_url) as store:
        jobs = store.runs.run_jobs(run["id"])
        assert len(jobs) == 4
        history = check_jobs(store, [job.id for job in jobs])
    assert all(events[-1].state == "succeeded" for events in history.values())
    top = next(job for job in jobs if job.node == "top")
    assert top.attempt == 2  # its first end went with the settle the kill cut short


def test_a_settle_killed_after_its_end_committed_is_finished_by_the_sweep(
    database_url: str, launch: Launcher
) -> None:
    """An end stored by the API (a held job killed) is settled in a transaction of its
    own: a kill there leaves the edges to the next start's sweep."""
    server = faulty(launch, database_url, "workflow.advance")
    upstream = held(server, "echo", text="never")
    after = server.submit(
        "echo", args={"text": "after"}, depends_on=[{"job": upstream, "on": "finished"}]
    )["id"]
    with contextlib.suppress(httpx.TransportError):
        server.act(upstream, "kill")
    killed_itself(server)
    again = launch(database_url, env=ENV)
    done = again.wait_state(after, "succeeded")
    assert done["attempt"] == 1
    with opened(database_url) as store:
        history = check_jobs(store, [upstream, after])
    assert history[upstream][-1].state == "killed"
