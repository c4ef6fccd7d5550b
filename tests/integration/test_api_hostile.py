"""Hostile input on every backend: a 4xx problem naming the field, and nothing stored.

Integers beyond 64 bits, NUL characters and lone surrogates, NaN and Infinity,
trees nested too deep, names longer than their column and malformed
``Last-Event-ID`` headers must be refused at the edge, before they reach
SQLite, PostgreSQL or MariaDB (each of which fails differently on them).
Bodies are sent as JSON text, escaped as a client in another language would
write them: Python's encoder itself refuses a lone surrogate.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from tests.harness import Server, shared_server

PROBLEM = "application/problem+json"
BIG = 2**63  # one past the largest signed 64-bit integer
SMALL = -(2**63) - 1

server = shared_server()


@dataclasses.dataclass(frozen=True)
class Hostile:
    """A request that must be refused with ``status``, naming ``field`` (when given)."""

    method: str
    path: str
    status: int = 422
    field: str | None = None
    body: str | None = None  # raw JSON text
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    headers: dict[str, str | bytes] = dataclasses.field(default_factory=dict)


def submit(**body: Any) -> str:
    return json.dumps({"type": "echo", "args": {"text": "x"}, "hold": True, **body})


def deep(levels: int) -> dict[str, Any]:
    tree: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        tree = {"a": tree}
    return tree


CASES = {
    # integers that no 64-bit column holds
    "job id": Hostile("GET", f"/api/v1/jobs/{BIG}", field="job_id"),
    "negative job id": Hostile("GET", f"/api/v1/jobs/{SMALL}", field="job_id"),
    "kill a huge id": Hostile("POST", f"/api/v1/jobs/{BIG}/kill", field="job_id"),
    "remove a huge id": Hostile("DELETE", f"/api/v1/jobs/{BIG}", field="job_id"),
    "restart a huge id": Hostile("POST", f"/api/v1/jobs/{BIG}/restart", field="job_id"),
    "logs after": Hostile("GET", "/api/v1/jobs/1/logs", field="after", params={"after": BIG}),
    "page overflowing the offset": Hostile(
        "GET", "/api/v1/jobs", field="page", params={"page": BIG // 500 + 1, "per_page": 500}
    ),
    "runs page": Hostile("GET", "/api/v1/workflow-runs", field="page", params={"page": BIG}),
    "notifications page": Hostile(
        "GET", "/api/v1/notifications", field="page", params={"page": BIG}
    ),
    "depends_on job": Hostile(
        "POST", "/api/v1/jobs", field="depends_on.0.job", body=submit(depends_on=[{"job": BIG}])
    ),
    "priority": Hostile("POST", "/api/v1/jobs", field="priority", body=submit(priority=BIG)),
    "an integer argument": Hostile(
        "POST",
        "/api/v1/jobs",
        field="args.count",
        body=json.dumps({"type": "lines", "args": {"count": BIG}, "hold": True}),
    ),
    "batch depends_on": Hostile(
        "POST",
        "/api/v1/jobs/batch",
        field="jobs.0.depends_on.0.job",
        body=json.dumps({"jobs": [json.loads(submit(depends_on=[{"job": SMALL}]))]}),
    ),
    "workflow run id": Hostile("GET", f"/api/v1/workflow-runs/{BIG}", field="run_id"),
    "resume a huge run": Hostile("POST", f"/api/v1/workflow-runs/{BIG}/resume", field="run_id"),
    "samples of a huge id": Hostile("GET", f"/api/v1/jobs/{BIG}/samples", field="job_id"),
    "sample attempt": Hostile(
        "GET", "/api/v1/jobs/1/samples", field="attempt", params={"attempt": 2**31}
    ),
    "events of a huge id": Hostile("GET", f"/api/v1/jobs/{BIG}/events", field="job_id"),
    "events after": Hostile("GET", "/api/v1/events", field="after", params={"after": BIG}),
    "events of a huge job": Hostile("GET", "/api/v1/events", field="job", params={"job": BIG}),
    "notifications of a huge run": Hostile(
        "GET", "/api/v1/notifications", field="run", params={"run": BIG}
    ),
    # Last-Event-ID: ASCII digits that fit in 64 bits, or 400
    # (a header is read as Latin-1, where str.isdigit also takes the superscripts ¹²³)
    "Last-Event-ID superscript": Hostile(
        "GET", "/api/v1/events", 400, headers={"Last-Event-ID": b"\xb2"}
    ),
    "Last-Event-ID with a superscript": Hostile(
        "GET", "/api/v1/jobs/1/events", 400, headers={"Last-Event-ID": b"1\xb3"}
    ),
    "Last-Event-ID of 5000 digits": Hostile(
        "GET", "/api/v1/events", 400, headers={"Last-Event-ID": "7" * 5000}
    ),
    "Last-Event-ID past 64 bits": Hostile(
        "GET", "/api/v1/events", 400, headers={"Last-Event-ID": str(BIG)}
    ),
    "Last-Event-ID on a log stream": Hostile(
        "GET", "/api/v1/jobs/1/logs", 400, params={"follow": "true"}, headers={"Last-Event-ID": "x"}
    ),
    # NUL characters and lone surrogates, wherever text goes
    "NUL in a type": Hostile("POST", "/api/v1/jobs", field="type", body=submit(type="echo\x00")),
    "surrogate in a name": Hostile(
        "POST", "/api/v1/jobs", field="name", body=submit(name="\ud800")
    ),
    "NUL deep in args": Hostile(
        "POST",
        "/api/v1/jobs",
        field="args.deep.list.1.x",
        body=submit(args={"text": "x", "deep": {"list": [1, {"x": "a\x00b"}]}}),
    ),
    "surrogate as an args key": Hostile(
        "POST", "/api/v1/jobs", field="args.\\udc00", body=submit(args={"text": "x", "\udc00": 1})
    ),
    "NUL in an idempotency key": Hostile(
        "POST", "/api/v1/jobs", field="idempotency_key", body=submit(idempotency_key="k\x00")
    ),
    "an idempotency key ending in a space (MariaDB would compare it without)": Hostile(
        "POST", "/api/v1/jobs", field="idempotency_key", body=submit(idempotency_key="k ")
    ),
    "surrogate in a queue": Hostile(
        "POST", "/api/v1/jobs", field="queue", body=submit(queue="q\udfff")
    ),
    "a queue ending in a space (MariaDB would take it for another queue)": Hostile(
        "POST", "/api/v1/jobs", field="queue", body=submit(queue="q ")
    ),
    "a queue with a slash (no path could pause it)": Hostile(
        "POST", "/api/v1/jobs", field="queue", body=submit(queue="a/b")
    ),
    "a queue in a batch": Hostile(
        "POST",
        "/api/v1/jobs/batch",
        field="jobs.0.queue",
        body=json.dumps({"jobs": [json.loads(submit(queue="two words"))]}),
    ),
    "NUL in a batch": Hostile(
        "POST",
        "/api/v1/jobs/batch",
        field="jobs.0.name",
        body=json.dumps({"jobs": [json.loads(submit(name="\x00"))]}),
    ),
    "NUL in a restart's args": Hostile(
        "POST",
        "/api/v1/jobs/1/restart",
        field="args.text",
        body=json.dumps({"args": {"text": "\x00"}}),
    ),
    "NUL in a description": Hostile(
        "PUT",
        "/api/v1/job-types/hostile",
        field="description",
        body=json.dumps({"command": ["true"], "description": "a\x00"}),
    ),
    "surrogate in a schedule": Hostile(
        "POST",
        "/api/v1/schedules",
        field="name",
        body=json.dumps({"name": "\ud83d", "job_type": "echo", "every": "1h"}),
    ),
    "NUL in workflow args": Hostile(
        "POST",
        "/api/v1/workflows/diamond/runs",
        field="args.x",
        body=json.dumps({"args": {"x": "\x00"}}),
    ),
    "NUL in search": Hostile("GET", "/api/v1/jobs", field="search", params={"search": "a\x00"}),
    "NUL in a type filter": Hostile("GET", "/api/v1/jobs", field="type", params={"type": "\x00"}),
    "NUL in a queue filter": Hostile(
        "GET", "/api/v1/jobs", field="queue", params={"queue": "\x00"}
    ),
    "NUL in a workflow filter": Hostile(
        "GET", "/api/v1/workflow-runs", field="workflow", params={"workflow": "\x00"}
    ),
    "NUL in a job type name": Hostile("GET", "/api/v1/job-types/a%00b", field="name"),
    "NUL in a job type to create": Hostile(
        "PUT", "/api/v1/job-types/a%00b", field="name", body=json.dumps({"command": ["true"]})
    ),
    "NUL in a schedule name": Hostile("POST", "/api/v1/schedules/%00/pause", field="name"),
    "NUL in a worker name": Hostile("POST", "/api/v1/workers/%00/drain", field="name"),
    "NUL in a queue name": Hostile("POST", "/api/v1/queues/%00/pause", field="name"),
    # NaN and Infinity, which Python's JSON parser accepts
    "Infinity in args": Hostile(
        "POST",
        "/api/v1/jobs",
        field="args.seconds",
        body='{"type": "sleep", "args": {"seconds": Infinity}, "hold": true}',
    ),
    "NaN in args": Hostile(
        "POST",
        "/api/v1/jobs",
        field="args.seconds",
        body='{"type": "sleep", "args": {"seconds": NaN}}',
    ),
    "-Infinity deep in args": Hostile(
        "POST",
        "/api/v1/jobs",
        field="args.extra.0",
        body='{"type": "echo", "args": {"text": "x", "extra": [-Infinity]}}',
    ),
    "a number too large for a double": Hostile(
        "POST",
        "/api/v1/jobs",
        field="args.seconds",
        body='{"type": "sleep", "args": {"seconds": 1e400}}',
    ),
    "Infinity as a drain timeout": Hostile(
        "POST", "/api/v1/workers/anyone/drain", field="timeout", body='{"timeout": Infinity}'
    ),
    "NaN in a job type": Hostile(
        "PUT",
        "/api/v1/job-types/hostile",
        field="timeout",
        body='{"command": ["true"], "timeout": NaN}',
    ),
    # numbers and times that fit the JSON but not a column or a date
    "a job type's priority": Hostile(
        "PUT",
        "/api/v1/job-types/hostile",
        field="priority",
        body=json.dumps({"command": ["true"], "priority": 2**40}),
    ),
    "a job type's retries": Hostile(
        "PUT",
        "/api/v1/job-types/hostile",
        field="retries.max",
        body=json.dumps({"command": ["true"], "retries": {"max": 2**40}}),
    ),
    "a job type's max_running": Hostile(
        "PUT",
        "/api/v1/job-types/hostile",
        field="max_running",
        body=json.dumps({"command": ["true"], "max_running": 2**40}),
    ),
    "run_at past year 9999 in UTC": Hostile(
        "POST", "/api/v1/jobs", field="run_at", body=submit(run_at="9999-12-31T23:00:00-14:00")
    ),
    "run_at before year 1 in UTC": Hostile(
        "POST", "/api/v1/jobs", field="run_at", body=submit(run_at="0001-01-01T00:00:00+14:00")
    ),
    "a schedule every 1e300 seconds": Hostile(
        "POST",
        "/api/v1/schedules",
        field="every",
        body=json.dumps({"name": "h1", "job_type": "echo", "args": {"text": "x"}, "every": 1e300}),
    ),
    "a schedule every 400 digits of weeks": Hostile(
        "POST",
        "/api/v1/schedules",
        field="every",
        body=json.dumps({"name": "h2", "job_type": "echo", "every": "9" * 400 + "w"}),
    ),
    "a schedule at the end of time": Hostile(
        "POST",
        "/api/v1/schedules",
        field="at",
        body=json.dumps({"name": "h3", "job_type": "echo", "at": "9999-12-31T23:00:00-14:00"}),
    ),
    "a schedule starting before time": Hostile(
        "POST",
        "/api/v1/schedules",
        field="start_at",
        body=json.dumps(
            {"name": "h4", "job_type": "echo", "every": "1h", "start_at": "0001-01-01T00:00+14:00"}
        ),
    ),
    # a boolean written as text: read as true, then stored as false (a "paused" schedule fired)
    "a schedule paused as text": Hostile(
        "POST",
        "/api/v1/schedules",
        field="paused",
        body=json.dumps({"name": "h5", "job_type": "echo", "every": "1h", "paused": "true"}),
    ),
    "hold as text": Hostile("POST", "/api/v1/jobs", field="hold", body=submit(hold="yes")),
    "follow as a number": Hostile("POST", "/api/v1/jobs", field="follow", body=submit(follow=1)),
    # shapes no real input has
    "args nested 100 deep": Hostile(
        "POST", "/api/v1/jobs", body=submit(args={"text": "x", "tree": deep(100)})
    ),
    "a queue longer than its column": Hostile(
        "POST", "/api/v1/jobs", field="queue", body=submit(queue="q" * 101)
    ),
}


def counts(server: Server) -> dict[str, int]:
    """How many of each stored thing there are: a refused request changes none."""
    found = {}
    for path in ("/api/v1/jobs", "/api/v1/job-types", "/api/v1/schedules", "/api/v1/workflow-runs"):
        response = server.client.get(path)
        assert response.status_code == 200, response.text
        found[path] = response.json()["total"]
    return found


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_hostile_input_is_a_problem_and_changes_nothing(server: Server, case: Hostile) -> None:
    before = counts(server)
    headers = case.headers | ({"content-type": "application/json"} if case.body else {})
    response = server.client.request(
        case.method, case.path, content=case.body, params=case.params, headers=headers
    )
    body = assert_problem(response, case.status)
    if case.field is not None:
        assert case.field in [error["field"] for error in body["errors"]], body
    assert counts(server) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/jobs"), ("POST", "/api/v1/tokens"), ("PUT", "/api/v1/job-types/plain")],
)
def test_a_body_sent_as_another_media_type_is_415(server: Server, method: str, path: str) -> None:
    before = counts(server)
    body = json.dumps({"type": "echo", "args": {"text": "x"}, "name": "t", "command": ["true"]})
    response = server.client.request(
        method, path, content=body, headers={"content-type": "text/plain; charset=utf-8"}
    )
    problem = assert_problem(response, 415)
    said = "the body must be JSON, sent with Content-Type: application/json (not text/plain)"
    assert problem["detail"] == said
    untyped = server.client.request(method, path, content=body)
    said = said.replace("not text/plain", "no Content-Type was sent")
    assert assert_problem(untyped, 415)["detail"] == said
    assert counts(server) == before


def test_a_lone_surrogate_in_the_path_is_not_text_and_not_a_crash(server: Server) -> None:
    """UTF-8 bytes of a surrogate in a URL decode to U+FFFD: a name like any other."""
    response = server.client.get("/api/v1/job-types/%ED%A0%80")
    assert_problem(response, 404)


def test_the_largest_values_that_fit_are_answered_normally(server: Server) -> None:
    largest = BIG - 1
    page = server.client.get("/api/v1/jobs", params={"page": largest // 500, "per_page": 500})
    assert page.status_code == 200, page.text
    assert page.json()["items"] == []
    assert_problem(server.client.get(f"/api/v1/jobs/{largest}"), 404)
    assert_problem(server.client.get(f"/api/v1/workflow-runs/{largest}"), 404)
    logs = server.client.get("/api/v1/jobs/1/logs", params={"after": largest})
    assert logs.status_code in (200, 404), logs.text


def test_text_beyond_the_basic_plane_is_stored_and_read_back(server: Server) -> None:
    """A surrogate *pair* is one character (here an emoji): valid text on every backend."""
    name = "deploy \U0001f680 ünïcode"
    job = server.submit("echo", args={"text": "\U0001f600"}, hold=True, name=name)
    again = server.job(job["id"])
    assert again["name"] == name
    assert again["args"]["text"] == "\U0001f600"
