"""What every route shares of HTTP: HEAD wherever GET, a 405 naming every method, Locations.

One server on SQLite serves the module. HEAD is checked against the GET of the
same URL, and on the wire: a HEAD's answer must end with its headers, so the
next answer on the same connection follows them at once.
"""

from __future__ import annotations

import base64
import socket
from typing import Any

import httpx
import pytest

from tests.harness import ADMIN, Server, shared_server
from tests.users import PROBLEM, client, unique

server = shared_server(backends=["sqlite"])
SAME = ("content-type", "content-length", "etag", "last-modified", "location", "allow")


def held_job(server: Server) -> int:
    job_id: int = server.submit("echo", args={"text": unique("held")}, hold=True)["id"]
    return job_id


def after_head(server: Server, path: str) -> tuple[bytes, bytes]:
    """A HEAD of ``path`` then a GET of /healthz on one connection: the HEAD's head, and
    what follows it (which must be the next answer, not a body)."""
    basic = base64.b64encode(":".join(ADMIN).encode()).decode()
    head = f"HEAD {path} HTTP/1.1\r\nHost: jobyard\r\nAuthorization: Basic {basic}\r\n\r\n"
    then = "GET /healthz HTTP/1.1\r\nHost: jobyard\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall((head + then).encode())
        received = b""
        while chunk := sock.recv(65536):  # to the close the GET asked for
            received += chunk
    first, rest = received.split(b"\r\n\r\n", 1)
    return first, rest


# -- HEAD ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs/{job}",
        "/api/v1/jobs/{job}/logs",
        "/api/v1/jobs?per_page=5",
        "/api/v1/jobs/999999999",  # a 404 problem, as for GET
        "/api/v1/job-types",
        "/healthz",
        "/openapi.json",
        "/jobs/{job}",
        "/docs",
        "/static/css/app.css",
        "/favicon.ico",
    ],
)
def test_head_answers_as_get_does_without_the_body(server: Server, path: str) -> None:
    url = path.format(job=held_job(server))
    got = server.client.get(url)
    head = server.client.head(url)
    assert head.status_code == got.status_code
    assert {name: head.headers.get(name) for name in SAME} == {
        name: got.headers.get(name) for name in SAME
    }
    assert int(head.headers["content-length"]) == len(got.content) > 0
    assert head.content == b""


def test_head_of_metrics_has_its_headers(server: Server) -> None:
    head = server.client.head("/metrics")  # its numbers change from one request to the next
    assert head.status_code == 200
    assert head.headers["content-type"] == server.client.get("/metrics").headers["content-type"]
    assert int(head.headers["content-length"]) > 0
    assert head.content == b""


def test_a_head_ends_with_its_headers_on_the_wire(server: Server) -> None:
    first, rest = after_head(server, f"/api/v1/jobs/{held_job(server)}")
    assert first.startswith(b"HTTP/1.1 200 ")
    assert b"content-length: " in first.lower()
    assert rest.startswith(b"HTTP/1.1 200 "), rest[:200]  # no body between the two


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/events",
        "/api/v1/events?from=now",
        "/api/v1/jobs/{job}/events",
        "/api/v1/jobs/{job}/logs?follow=true",
    ],
)
def test_head_of_a_stream_answers_at_once_and_opens_no_subscription(
    server: Server, path: str
) -> None:
    url = path.format(job=held_job(server))  # a job that never ends: its stream neither
    head = server.client.head(url)
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.headers["cache-control"] == "no-cache"
    assert head.content == b""
    first, rest = after_head(server, url)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert rest.startswith(b"HTTP/1.1 200 "), rest[:200]
    assert server.subscribers() == 0


def test_head_of_a_missing_jobs_stream_is_its_404(server: Server) -> None:
    head = server.client.head("/api/v1/jobs/999999999/events")
    assert head.status_code == 404
    assert head.headers["content-type"] == PROBLEM
    assert int(head.headers["content-length"]) > 0


def test_head_needs_what_get_needs(server: Server) -> None:
    job = held_job(server)
    with client(server) as anonymous:
        refused = anonymous.head(f"/api/v1/jobs/{job}")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == PROBLEM
        assert refused.headers["www-authenticate"].startswith("Basic ")
        assert anonymous.head("/api/v1/events").status_code == 401
        page = anonymous.head(f"/jobs/{job}")
        assert (page.status_code, page.headers["location"]) == (303, f"/login?next=/jobs/{job}")
        assert anonymous.head("/healthz").status_code == 200


def test_the_openapi_document_lists_no_head(server: Server) -> None:
    spec = server.client.get("/openapi.json").json()
    methods = {method for operations in spec["paths"].values() for method in operations}
    assert "head" not in methods
    assert "get" in spec["paths"]["/api/v1/jobs/{job_id}"]


def test_head_where_there_is_no_get_is_a_405(server: Server) -> None:
    response = server.client.head(f"/api/v1/jobs/{held_job(server)}/pause")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.content == b""


# -- 405 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/v1/jobs", "GET, HEAD, POST"),
        ("PATCH", "/api/v1/jobs", "GET, HEAD, POST"),
        ("PUT", "/api/v1/jobs/1", "DELETE, GET, HEAD"),
        ("GET", "/api/v1/jobs/1/pause", "POST"),
        ("POST", "/api/v1/job-types/x", "DELETE, GET, HEAD, PUT"),
        ("DELETE", "/api/v1/users", "GET, HEAD, POST"),
        ("POST", "/healthz", "GET, HEAD"),
        ("POST", "/jobs", "GET, HEAD"),
        ("PUT", "/static/css/app.css", "GET, HEAD"),
    ],
)
def test_a_wrong_method_is_a_405_problem_naming_every_method(
    server: Server, method: str, path: str, allow: str
) -> None:
    response = server.client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body == {
        "type": "about:blank",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": f"{method} is not one of this path's methods: {allow}",
        "instance": path,
    }


# -- Location -----------------------------------------------------------------


def assert_located(http: httpx.Client, made: httpx.Response, path: str, key: str = "id") -> None:
    """``made`` is a 201 whose ``Location`` is ``path``, which reads the new resource back."""
    assert made.status_code == 201, made.text
    assert made.headers["location"] == path
    found = http.get(path)
    assert found.status_code == 200, found.text
    assert found.json()[key] == made.json()[key]


def test_every_creation_is_located_by_a_path(server: Server) -> None:
    # Reached by another name: a path holds whatever host and scheme the client used.
    host = {"Host": "jobs.example.org"}
    with httpx.Client(base_url=server.url, timeout=30, auth=ADMIN, headers=host) as http:
        job = http.post("/api/v1/jobs", json={"type": "echo", "args": {"text": "x"}, "hold": True})
        job_id = job.json()["id"]
        assert_located(http, job, f"/api/v1/jobs/{job_id}")
        http.post(f"/api/v1/jobs/{job_id}/kill").raise_for_status()
        again = http.post(f"/api/v1/jobs/{job_id}/restart")
        assert_located(http, again, f"/api/v1/jobs/{again.json()['id']}")
        run = http.post("/api/v1/workflows/diamond/runs")
        assert_located(http, run, f"/api/v1/workflow-runs/{run.json()['id']}")
        kind = unique("kind")
        made = http.post("/api/v1/job-types", json={"name": kind, "command": ["true"]})
        assert_located(http, made, f"/api/v1/job-types/{kind}", key="name")
        put = unique("put")
        created = http.put(f"/api/v1/job-types/{put}", json={"command": ["true"]})
        assert_located(http, created, f"/api/v1/job-types/{put}", key="name")
        replaced = http.put(f"/api/v1/job-types/{put}", json={"command": ["false"]})
        assert replaced.status_code == 200, replaced.text
        assert "location" not in replaced.headers  # nothing new to name
        every = {"name": unique("every"), "job_type": kind, "every": "1h"}
        schedule = http.post("/api/v1/schedules", json=every)
        assert_located(http, schedule, f"/api/v1/schedules/{every['name']}", key="name")
        name = f"{unique('someone')}@example.org"
        user = http.post("/api/v1/users", json={"name": name, "password": "long-enough-pw"})
        assert_located(http, user, f"/api/v1/users/{name}", key="name")
        token = http.post("/api/v1/tokens", json={"name": unique("token")})
        assert token.status_code == 201, token.text
        assert token.headers["location"] == f"/api/v1/tokens/{token.json()['id']}"  # no GET


def test_a_followed_submission_is_located_by_a_path(server: Server) -> None:
    body = {"type": "echo", "args": {"text": "x"}, "follow": True}
    with server.client.stream("POST", "/api/v1/jobs", json=body) as stream:
        assert stream.status_code == 201
        assert stream.headers["content-type"].startswith("text/event-stream")
        location = stream.headers["location"]
        assert location.startswith("/api/v1/jobs/"), location
        stream.read()  # to its close: the job ends
    assert server.client.get(location).json()["state"] == "succeeded"
