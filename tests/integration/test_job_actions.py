"""One action on many jobs: ``POST /api/v1/jobs/actions``, ``Client.act_many`` and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx

from jobyard.client import Client
from tests.harness import FIXTURES, Server, shared_server

server = shared_server(config=FIXTURES / "any_queue.yaml")  # a queue of its own per test
ACTIONS = "/api/v1/jobs/actions"


def held(server: Server, queue: str, count: int = 1) -> list[int]:
    jobs = [{"type": "echo", "args": {"text": "x"}, "hold": True, "queue": queue}] * count
    response = server.client.post("/api/v1/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 201, response.text
    ids: list[int] = response.json()["ids"]
    return ids


def act(server: Server, action: str, ids: list[int], **body: Any) -> list[dict[str, Any]]:
    response = server.client.post(ACTIONS, json={"action": action, "ids": ids, **body})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def queue() -> str:
    """A queue of the test's own: filters on it see only the test's jobs."""
    return f"q-{uuid.uuid4().hex[:8]}"


def concurrently(count: int, call: Callable[[], int]) -> list[int]:
    """``call`` from ``count`` threads at once; what each returned, sorted."""
    with ThreadPoolExecutor(count) as pool:
        return sorted(pool.map(lambda _: call(), range(count)))


def force_remove(server: Server, job_id: int) -> int:
    return server.client.delete(f"/api/v1/jobs/{job_id}?force=true").status_code


def force_remove_many(server: Server, job_id: int) -> int:
    [result] = act(server, "remove", [job_id], force=True)
    status: int = result["status"]
    return status


def test_concurrent_forced_removals_remove_the_job_once_and_find_it_gone(
    server: Server,
) -> None:
    """A removal killed the job first, and a kill of a job that had ended meanwhile (killed
    by another removal) was a 409: 5 removals at once answered 409 most of the time."""
    for live in (False, False, True):
        if live:
            job = server.submit("sleep", args={"seconds": 60})["id"]
            server.wait_state(job, "running")
        else:
            [job] = held(server, queue())
        assert concurrently(5, partial(force_remove, server, job)) == [204] + [404] * 4
    [job] = held(server, queue())
    assert concurrently(5, partial(force_remove_many, server, job)) == [204] + [404] * 4


def test_each_job_is_handled_on_its_own_and_a_failure_stops_none(server: Server) -> None:
    first, second = held(server, queue(), 2)
    running = server.submit("sleep", args={"seconds": 30})["id"]
    server.wait_state(running, "running")
    results = act(server, "kill", [first, running, 999_999, second, first])
    assert [r["id"] for r in results] == [first, running, 999_999, second]  # each id once
    by_id = {r["id"]: r for r in results}
    assert (by_id[first]["ok"], by_id[first]["status"]) == (True, 200)
    assert by_id[first]["job"]["state"] == "killed"
    assert by_id[first]["error"] is None
    assert (by_id[running]["status"], by_id[running]["job"]["control"]) == (202, "kill")
    missing = by_id[999_999]
    assert (missing["ok"], missing["status"], missing["job"]) == (False, 404, None)
    assert missing["error"]["status"] == 404
    assert missing["error"]["detail"] == "no job with id 999999"
    assert missing["error"]["instance"] == "/api/v1/jobs/999999/kill"
    assert by_id[second]["job"]["state"] == "killed"
    server.wait_state(running, "killed")
    [again] = act(server, "kill", [first])
    assert (again["ok"], again["status"], again["error"]["state"]) == (False, 409, "killed")
    # the single route says the same
    single = server.act(first, "kill")
    assert single.status_code == 409
    assert single.json()["detail"] == again["error"]["detail"]


def test_start_releases_held_jobs(server: Server) -> None:
    ids = held(server, queue(), 2)
    released = act(server, "start", ids)
    assert [(r["ok"], r["status"]) for r in released] == [(True, 200), (True, 200)]
    assert {r["job"]["state"] for r in released} <= {"queued", "running", "succeeded"}
    for job_id in ids:
        server.wait_state(job_id, "succeeded")


def test_pause_and_resume_are_intents_for_the_worker(server: Server) -> None:
    ids = [server.submit("sleep", args={"seconds": 30})["id"] for _ in range(2)]
    for job_id in ids:
        server.wait_state(job_id, "running")
    paused = act(server, "pause", ids)
    assert [(r["status"], r["job"]["control"]) for r in paused] == [(202, "pause")] * 2
    for job_id in ids:
        server.wait_state(job_id, "paused")
    resumed = act(server, "resume", ids)
    assert [(r["status"], r["job"]["control"]) for r in resumed] == [(202, "resume")] * 2
    for job_id in ids:
        server.wait_state(job_id, "running")
    act(server, "kill", ids)
    for job_id in ids:
        server.wait_state(job_id, "killed")


def test_restart_and_remove_answer_as_their_own_routes(server: Server) -> None:
    ended = [server.submit("echo", args={"text": "again"})["id"] for _ in range(2)]
    for job_id in ended:
        server.wait_state(job_id, "succeeded")
    restarted = act(server, "restart", ended)
    assert [(r["status"], r["job"]["restarted_from"]) for r in restarted] == [
        (201, ended[0]),
        (201, ended[1]),
    ]
    [twice] = act(server, "restart", ended[:1])
    assert twice["status"] == 409
    assert twice["error"]["restarted_as"] == restarted[0]["job"]["id"]
    [live] = held(server, queue())
    results = act(server, "remove", [ended[0], live])
    assert [(r["status"], r["job"]) for r in results] == [(204, None), (409, None)]
    assert "kill it first or use force" in results[1]["error"]["detail"]
    assert results[1]["error"]["instance"] == f"/api/v1/jobs/{live}"
    [forced] = act(server, "remove", [live], force=True)
    assert (forced["ok"], forced["status"]) == (True, 204)
    for job_id in (ended[0], live):
        assert server.client.get(f"/api/v1/jobs/{job_id}").status_code == 404


def test_bad_requests_are_problems(server: Server) -> None:
    cases = [
        {"action": "kill", "ids": []},
        {"action": "kill", "ids": list(range(1, 502))},
        {"action": "kill", "ids": [0]},
        {"action": "kill", "ids": [True]},
        {"action": "kill", "ids": ["3"]},
        {"action": "remove", "ids": [1], "force": "yes"},
        {"action": "explode", "ids": [1]},
        {"action": "kill", "ids": [1], "extra": True},
        {"ids": [1]},
    ]
    for body in cases:
        response = server.client.post(ACTIONS, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    # the one-segment path is not taken for a job id by the other routes: POST only
    for method in ("GET", "DELETE"):
        answer = server.client.request(method, ACTIONS)
        assert (answer.status_code, answer.headers["Allow"]) == (405, "POST")


def test_viewers_may_not_and_the_audit_log_has_one_entry(server: Server) -> None:
    name = f"viewer-{uuid.uuid4().hex[:6]}"
    user = {"name": name, "role": "viewer", "password": "viewer-password"}
    assert server.client.post("/api/v1/users", json=user).status_code == 201
    [job_id] = held(server, queue())
    auth = (name, "viewer-password")
    with httpx.Client(base_url=server.url, auth=auth, timeout=30) as viewer:
        refused = viewer.post(ACTIONS, json={"action": "kill", "ids": [job_id]})
    assert refused.status_code == 403
    assert server.job(job_id)["state"] == "held"
    act(server, "kill", [job_id])
    entries = server.client.get("/api/v1/audit", params={"action": "act_on_jobs"}).json()
    outcomes = [(e["actor"], e["outcome"], e["target"]) for e in entries["items"][:2]]
    assert outcomes == [("admin", "ok", ACTIONS), (name, "denied", ACTIONS)]
    detail = entries["items"][0]["detail"]
    assert (detail["action"], detail["ids"], detail["refused"]) == ("kill", [job_id], 0)


def test_the_client_sends_many_ids_in_requests_of_500(server: Server) -> None:
    ids = held(server, queue(), 501)
    with Client(server.url) as client:
        results = client.act_many("kill", [*ids, ids[0]])
        assert [r.id for r in results] == ids
        assert all(r.ok and r.job is not None and r.job.state == "killed" for r in results)
        [missing] = client.act_many("remove", [999_999])
        assert (missing.ok, missing.status, missing.job) == (False, 404, None)
        assert missing.message == "no job with id 999999"
        assert client.act_many("kill", []) == []


# -- the CLI --------------------------------------------------------------------
def jobyard(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"JOBYARD_SERVER": server.url, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "jobyard", *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,  # not a terminal: nobody to ask
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_the_cli_acts_on_several_ids(server: Server) -> None:
    first, second = held(server, queue(), 2)
    done = jobyard(server, "kill", str(first), str(second))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"job {first}: killed", f"job {second}: killed"]
    [third] = held(server, queue())
    partly = jobyard(server, "kill", str(first), str(third), "999999")
    assert partly.returncode == 4  # the first failure's code: a conflict
    assert partly.stdout.splitlines() == [f"job {third}: killed"]
    errors = partly.stderr.splitlines()
    assert errors[0] == f"jobyard: error: job {first}: cannot kill a job that is killed"
    assert errors[1] == "jobyard: error: job 999999: no job with id 999999"
    [fourth] = held(server, queue())
    single = jobyard(server, "rm", str(fourth), "--force", "--json")
    assert json.loads(single.stdout) == {"id": fourth, "removed": True}
    removed = jobyard(server, "rm", str(first), str(third), "--json")
    assert removed.returncode == 0, removed.stderr
    assert [(r["id"], r["status"]) for r in json.loads(removed.stdout)] == [
        (first, 204),
        (third, 204),
    ]


def test_the_cli_selects_jobs_by_filter_and_asks_first(server: Server) -> None:
    mine = queue()
    ids = held(server, mine, 3)
    refused = jobyard(server, "kill", "--queue", mine, "--state", "held")
    assert refused.returncode == 2
    assert "3 jobs match" in refused.stderr
    assert "--yes" in refused.stderr
    assert all(server.job(job_id)["state"] == "held" for job_id in ids)
    done = jobyard(server, "kill", "--queue", mine, "--state", "held", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"job {job_id}: killed" for job_id in ids]
    again = jobyard(server, "restart", "--queue", mine, "--state", "killed", "--type", "echo", "-y")
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert [line.split(" restarted as ")[0] for line in lines] == [f"job {i}" for i in ids]
    # the restarted ones are left out of a second selection
    nothing = jobyard(server, "restart", "--queue", mine, "--state", "killed", "-y")
    assert (nothing.returncode, nothing.stdout) == (0, "")
    assert "no job matches" in nothing.stderr
    both = jobyard(server, "kill", str(ids[0]), "--queue", mine)
    assert both.returncode == 2
    assert "not both" in both.stderr
    overrides = jobyard(server, "restart", str(ids[0]), str(ids[1]), "text=y")
    assert overrides.returncode == 2
    assert "exactly one job id" in overrides.stderr
