"""The HTTP contract: listing, job types, and every kind of bad input.

One server on SQLite serves the whole module; jobs are submitted held so they
stay where the test puts them, and each test finds its own jobs by a unique
name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import ADMIN, Server, shared_server

PROBLEM = "application/problem+json"


server = shared_server(backends=["sqlite"])


def total_jobs(server: Server) -> int:
    total: int = server.client.get("/api/v1/jobs").json()["total"]
    return total


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def test_unknown_type_is_422_naming_the_field(server: Server) -> None:
    before = total_jobs(server)
    body = assert_problem(server.client.post("/api/v1/jobs", json={"type": "nope"}), 422)
    assert body["errors"][0]["field"] == "type"
    assert total_jobs(server) == before


def test_bad_args_name_every_bad_field_and_change_nothing(server: Server) -> None:
    before = total_jobs(server)
    response = server.client.post(
        "/api/v1/jobs",
        json={"type": "echo", "args": {"repeat": 0, "day": "not-a-date", "colour": "red"}},
    )
    body = assert_problem(response, 422)
    fields = {error["field"] for error in body["errors"]}
    assert {"args.text", "args.repeat", "args.day", "args.colour"} <= fields
    assert total_jobs(server) == before


def test_defaults_are_filled_in(server: Server) -> None:
    job = server.submit("echo", args={"text": "hi"}, hold=True)
    assert job["args"] == {"text": "hi", "repeat": 1}
    assert job["command"] == ["echo", "hi"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/jobs/999999", 404),
        ("POST", "/api/v1/jobs/999999/pause", 404),
        ("DELETE", "/api/v1/jobs/999999", 404),
        ("GET", "/api/v1/jobs/999999/logs", 404),
        ("GET", "/api/v1/jobs/abc", 422),
        ("GET", "/api/v1/job-types/nope", 404),
        ("GET", "/api/v1/nothing-here", 404),
        ("PATCH", "/api/v1/jobs", 405),
        ("GET", "/api/v1/jobs/batch", 405),  # a path of its own, not a job's id
        ("DELETE", "/api/v1/jobs/actions", 405),
    ],
)
def test_unknown_resources_are_problems(
    server: Server, method: str, path: str, status: int
) -> None:
    answer = server.client.request(method, path)
    assert_problem(answer, status)
    if path.endswith(("batch", "actions")):
        assert answer.headers["Allow"] == "POST"


def test_a_forbidden_transition_is_409_with_the_current_state(server: Server) -> None:
    job = server.submit("echo", args={"text": "x"})
    server.wait_state(job["id"], "succeeded")
    for action in ("resume", "pause", "kill", "start"):
        body = assert_problem(server.act(job["id"], action), 409)
        assert body["state"] == "succeeded"
    assert server.job(job["id"])["state"] == "succeeded"


def test_malformed_json_is_400(server: Server) -> None:
    before = total_jobs(server)
    response = server.client.post(
        "/api/v1/jobs", content=b'{"type": "echo",', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400)
    assert total_jobs(server) == before


def test_a_body_over_one_mebibyte_is_413(server: Server) -> None:
    before = total_jobs(server)
    big = {"type": "echo", "args": {"text": "x" * (1024 * 1024 + 1)}}
    assert assert_problem(server.client.post("/api/v1/jobs", json=big), 413)["instance"] == (
        "/api/v1/jobs"
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it streams
        yield b'{"type": "echo", "args": {"text": "'
        for _ in range(300):
            yield b"y" * 4096
        yield b'"}}'

    response = server.client.post(
        "/api/v1/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert assert_problem(response, 413)["instance"] == "/api/v1/jobs"
    assert total_jobs(server) == before


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "password"}, "sort"),
        ({"state": "sleeping"}, "state"),
        ({"per_page": 501}, "per_page"),
        ({"page": 0}, "page"),
        ({"since": "2026-01-01T00:00:00"}, "since"),  # no offset: which zone?
        ({"until": "yesterday"}, "until"),
        ({"since": "0001-01-01T00:00:00+05:00"}, "since"),  # before year 1 in UTC
        ({"until": "9999-12-31T23:00:00-05:00"}, "until"),  # after year 9999 in UTC
        ({"since": "0"}, "since"),  # not a Unix time: a number is no date-time here
        ({"until": "1700000000.5"}, "until"),
    ],
)
def test_bad_list_parameters_are_422(server: Server, params: dict[str, Any], field: str) -> None:
    body = assert_problem(server.client.get("/api/v1/jobs", params=params), 422)
    assert body["errors"][0]["field"] == field


def test_bad_submission_fields_are_422(server: Server) -> None:
    before = total_jobs(server)
    for bad in (
        {"type": "echo", "args": {"text": "x"}, "priority": "high"},
        {"type": "echo", "args": {"text": "x"}, "run_at": "2026-01-01T00:00:00"},
        {"type": "echo", "args": {"text": "x"}, "run_at": 1900000000},
        {"type": "echo", "args": {"text": "x"}, "run_at": "1900000000"},
        {"type": "echo", "args": {"text": "x"}, "surprise": 1},
        {"args": {"text": "x"}},
        [1, 2],
    ):
        assert_problem(server.client.post("/api/v1/jobs", json=bad), 422)
    assert total_jobs(server) == before


def test_list_filters_sorts_searches_and_pages(server: Server) -> None:
    tag = uuid.uuid4().hex[:10]
    ids = []
    for i in range(7):
        job = server.submit(
            "echo", args={"text": f"{tag}-{i}"}, hold=True, priority=i % 3, name=f"{tag}-n{i}"
        )
        ids.append(job["id"])
    sleeper = server.submit("sleep", args={"seconds": 1}, hold=True, name=f"{tag}-sleep")
    server.act(ids[0], "kill", expect=200)

    def page(**params: Any) -> dict[str, Any]:
        response = server.client.get("/api/v1/jobs", params={"search": tag, **params})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    everything = page(per_page=500)
    assert everything["total"] == 8
    assert {j["id"] for j in everything["items"]} == {*ids, sleeper["id"]}
    assert page(state="killed")["total"] == 1
    assert page(state="held,killed")["total"] == 8
    assert page(type="sleep")["items"][0]["id"] == sleeper["id"]
    assert page(queue="default")["total"] == 8
    assert page(queue="elsewhere")["total"] == 0
    assert page(search=f"{tag}-5")["items"][0]["id"] == ids[5]  # matches args and name
    assert page(search=tag.upper())["total"] == 8  # case-insensitive
    fifth = server.client.get(f"/api/v1/jobs/{ids[4]}").json()["created_at"]
    later = {j["id"] for j in page(since=fifth, per_page=500)["items"]}
    assert later == {*ids[4:], sleeper["id"]}  # created at or after the fifth
    assert {j["id"] for j in page(until=fifth, per_page=500)["items"]} == set(ids[:4])

    newest_first = [j["id"] for j in page(per_page=500)["items"]]
    assert newest_first == sorted(newest_first, reverse=True)
    oldest_first = [j["id"] for j in page(sort="created_at", per_page=500)["items"]]
    assert oldest_first == sorted(oldest_first)
    by_priority = page(sort="-priority,id", type="echo", per_page=500)["items"]
    assert [j["priority"] for j in by_priority] == sorted(
        (j["priority"] for j in by_priority), reverse=True
    )

    pages = [page(per_page=3, page=n, sort="id") for n in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [3, 3, 2]
    assert all(p["total"] == 8 and p["per_page"] == 3 for p in pages)
    assert [j["id"] for p in pages for j in p["items"]] == sorted([*ids, sleeper["id"]])
    assert page(per_page=3, page=4)["items"] == []
    assert page(worker="nobody")["total"] == 0
    ran = server.submit("echo", args={"text": f"{tag}-ran"})
    worker = server.wait_state(ran["id"], "succeeded")["worker"]
    assert [j["id"] for j in page(worker=worker)["items"]] == [ran["id"]]


def test_an_idempotency_key_returns_the_first_job(server: Server) -> None:
    key = uuid.uuid4().hex
    first = server.submit("echo", args={"text": "a"}, hold=True, idempotency_key=key)
    again = server.submit("echo", 200, args={"text": "a"}, hold=True, idempotency_key=key)
    assert again["id"] == first["id"]


def test_a_batch_is_created_whole_or_not_at_all(server: Server) -> None:
    before = total_jobs(server)
    good = {"type": "echo", "args": {"text": "b"}, "hold": True}
    response = server.client.post("/api/v1/jobs/batch", json={"jobs": [good, good, good]})
    assert response.status_code == 201, response.text
    assert len(response.json()["ids"]) == 3
    assert total_jobs(server) == before + 3
    bad = {"type": "echo", "args": {"repeat": 99}}
    body = assert_problem(server.client.post("/api/v1/jobs/batch", json={"jobs": [good, bad]}), 422)
    assert {e["field"] for e in body["errors"]} >= {"jobs.1.args.text", "jobs.1.args.repeat"}
    # A batch of one names its fields as any batch, and as the request's own checks do.
    alone = assert_problem(server.client.post("/api/v1/jobs/batch", json={"jobs": [bad]}), 422)
    assert {e["field"] for e in alone["errors"]} == {"jobs.0.args.text", "jobs.0.args.repeat"}
    shape = {"type": "echo", "args": {"text": "b"}, "name": 5}
    shaped = assert_problem(server.client.post("/api/v1/jobs/batch", json={"jobs": [shape]}), 422)
    assert [e["field"] for e in shaped["errors"]] == ["jobs.0.name"]
    # A batch answers with its jobs: an item cannot ask for a stream.
    follow = {**good, "follow": True}
    followed = assert_problem(
        server.client.post("/api/v1/jobs/batch", json={"jobs": [follow]}), 422
    )
    assert [e["field"] for e in followed["errors"]] == ["jobs.0.follow"]
    assert total_jobs(server) == before + 3


def test_a_key_repeated_in_a_batch_is_its_first_job(server: Server) -> None:
    key = f"batch-{uuid.uuid4().hex}"
    job = {"type": "echo", "args": {"text": "b"}, "hold": True, "idempotency_key": key}
    jobs = [job, {**job, "args": {"text": "other"}}, {**job, "idempotency_key": None}]
    answer = server.client.post("/api/v1/jobs/batch", json={"jobs": jobs})
    assert answer.status_code == 201, answer.text
    first, again, other = answer.json()["ids"]
    assert again == first != other
    assert server.job(first)["args"] == {"text": "b", "repeat": 1}


def test_job_types_show_their_json_schema(server: Server) -> None:
    listing = server.client.get("/api/v1/job-types").json()
    names = [t["name"] for t in listing["items"]]
    assert {"echo", "sleep", "py-count"} <= set(names)
    echo = server.client.get("/api/v1/job-types/echo").json()
    schema = echo["params"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["text"]
    assert schema["properties"]["repeat"]["default"] == 1
    assert echo["defaults"] == {"repeat": 1}
    assert echo["source"] == "config"


def test_job_types_can_be_managed_through_the_api(server: Server) -> None:
    name = f"greet-{uuid.uuid4().hex[:6]}"
    definition = {
        "name": name,
        "description": "Say hello",
        "command": ["echo", "hello", "{who}"],
        "params": {"who": {"type": "string", "default": "world"}},
    }
    created = server.client.post("/api/v1/job-types", json=definition)
    assert created.status_code == 201, created.text
    assert created.json()["source"] == "api"
    again = assert_problem(server.client.post("/api/v1/job-types", json=definition), 409)
    assert f"PUT /api/v1/job-types/{name}" in again["detail"]
    bad = {"name": name, "command": ["echo"], "params": {"n": {"type": "nope"}}}
    assert_problem(server.client.post("/api/v1/job-types", json=bad), 409)  # the name first
    job = server.submit(name)
    server.wait_state(job["id"], "succeeded")
    assert [line["line"] for line in server.logs(job["id"])][-1] == "hello world"

    replaced = server.client.put(
        f"/api/v1/job-types/{name}", json={**definition, "command": ["echo", "hi", "{who}"]}
    )
    assert replaced.status_code == 200
    assert server.submit(name, hold=True)["command"] == ["echo", "hi", "world"]
    other = server.client.put(f"/api/v1/job-types/{name}", json={**definition, "name": "other"})
    [error] = assert_problem(other, 422)["errors"]
    assert error["field"] == "name"
    assert error["message"] == f"'other' is not the name the path gives ({name!r})"
    assert server.client.get("/api/v1/job-types/other").status_code == 404
    assert server.client.delete(f"/api/v1/job-types/{name}").status_code == 204
    assert server.client.get(f"/api/v1/job-types/{name}").status_code == 404
    assert server.job(job["id"])["state"] == "succeeded"  # jobs keep their definition


def test_a_type_posted_by_many_at_once_is_created_by_one(server: Server) -> None:
    """The others are told it exists (409); each read it free a moment before."""
    name = f"race-{uuid.uuid4().hex[:6]}"

    def post(n: int) -> int:
        body = {"name": name, "command": ["echo", str(n)]}
        with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as http:
            return http.post("/api/v1/job-types", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(post, range(8)))
    assert sorted(codes) == [201] + [409] * 7
    stored = server.client.get(f"/api/v1/job-types/{name}").json()["definition"]["command"]
    assert stored == ["echo", str(codes.index(201))]


def test_bad_job_types_are_refused(server: Server) -> None:
    assert_problem(server.client.put("/api/v1/job-types/echo", json={"command": ["x"]}), 409)
    assert_problem(server.client.delete("/api/v1/job-types/echo"), 409)
    # Not "PUT replaces it": a type of the configuration file changes there.
    created = server.client.post("/api/v1/job-types", json={"name": "echo", "command": ["x"]})
    assert "configuration file" in assert_problem(created, 409)["detail"]
    body = assert_problem(
        server.client.put(
            "/api/v1/job-types/broken",
            json={"comand": ["x"], "params": {"n": {"type": "integer", "minimum": "one"}}},
        ),
        422,
    )
    assert body["errors"]
    assert server.client.get("/api/v1/job-types/broken").status_code == 404


def test_docs_and_openapi_are_served(server: Server) -> None:
    assert server.client.get("/docs").status_code == 200
    spec = server.client.get("/openapi.json").json()
    assert "/api/v1/jobs/{job_id}/pause" in spec["paths"]
    health = server.client.get("/healthz").json()
    assert (health["status"], health["reasons"]) == ("ok", [])
    assert health["database"] == "sqlite"


def test_every_operation_documents_its_problems(server: Server) -> None:
    spec = server.client.get("/openapi.json").json()
    problem = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            problems = {
                int(code)
                for code, answer in responses.items()
                if PROBLEM in answer.get("content", {})
            }
            # A route may answer a status in another form too (the login page's HTML 401).
            assert all(
                responses[str(code)]["content"][PROBLEM] == problem[PROBLEM] for code in problems
            )
            if path.startswith("/api/"):
                assert {401, 403, 503} <= problems, (method, path)
            if "{" in path:
                assert {404, 422} <= problems, (method, path)
            if "requestBody" in operation:
                assert {400, 413, 422} <= problems, (method, path)
            if method in ("post", "put", "delete"):
                assert 409 in problems, (method, path)
    assert not spec["paths"]["/healthz"]["get"]["responses"].keys() - {"200"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["components"]["schemas"]["Problem"]["properties"]["status"]["type"] == "integer"


def test_the_server_refuses_a_broken_config(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "jobyard.yaml"
    bad.write_text("job_types:\n  x:\n    command: [echo]\n    retries: {max: -1}\n")
    result = subprocess.run(
        [sys.executable, "-m", "jobyard", "serve", "--config", str(bad), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert str(bad) in result.stderr
    assert "job_types.x.retries.max" in result.stderr
    assert result.stderr.count("\n") <= 3
