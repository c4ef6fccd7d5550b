"""Who may call what: every operation of the OpenAPI document, for every role.

The expected role of each route comes from :data:`jobyard.api.app.ROUTERS`, so a
route added to a router is checked the moment it exists, and a router missing
from that table fails :func:`test_every_operation_belongs_to_a_router`. Requests
are built from the document: path parameters name things that do not exist
(job 999999, queue ``no-such-…``), so an allowed destructive call answers 404
or 422 and changes nothing; streams are closed after their status line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from jobyard.access import Role
from jobyard.api.app import ROUTERS
from tests.harness import Server, shared_server
from tests.users import (
    PASSWORD,
    add_user,
    assert_problem,
    bearer,
    client,
    login,
    new_token,
    session,
    unique,
)

server = shared_server(backends=["sqlite"])

MISSING_ID = 999_999
MISSING_NAME = "no-such-thing"
# Routes of ROUTERS kept out of the OpenAPI document on purpose (the login page is
# the UI's now, with the other pages: see tests/integration/test_ui_pages.py).
HIDDEN: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the template, as in the document
    url: str  # with its path parameters filled in
    body: bool  # whether it takes a JSON body

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Caller:
    """A way of calling the server, and the role its requests act with."""

    label: str
    role: Role
    http: httpx.Client
    session: bool = False  # a browser session: POST /logout would end it mid-test


def requirements() -> dict[tuple[str, str], tuple[Role | None, Role | None]]:
    """(method, path) → (read role, write role) of every route of ``ROUTERS``."""
    found: dict[tuple[str, str], tuple[Role | None, Role | None]] = {}
    for router, read, write in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute), route
            for method in route.methods:
                found[(method, route.path_format)] = (read, write)  # no convertor
    return found


def needed(operation: Operation) -> Role | None:
    """The role the operation needs (None: public), by ROUTERS."""
    read, write = requirements()[(operation.method, operation.path)]
    return read if operation.method in ("GET", "HEAD") else write


@pytest.fixture(scope="module")
def document(server: Server) -> dict[str, Any]:
    response = server.client.get("/openapi.json")
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


@pytest.fixture(scope="module")
def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in document["paths"].items():
        for method, spec in item.items():
            url = path
            for param in spec.get("parameters", []):
                if param["in"] == "path":
                    url = url.replace("{" + param["name"] + "}", _missing(param["schema"]))
            body = "application/json" in spec.get("requestBody", {}).get("content", {})
            found.append(Operation(method.upper(), path, url, body))
    assert len(found) > 50  # the whole API, not an empty document
    return found


def _missing(schema: dict[str, Any]) -> str:
    """A value of the parameter's type that names nothing on the server."""
    return str(MISSING_ID) if schema.get("type") == "integer" else MISSING_NAME


@pytest.fixture(scope="module")
def callers(server: Server) -> Iterator[list[Caller]]:
    """Each role by password; an admin's operator token; a viewer's browser session."""
    made: list[Caller] = []
    for role in Role:
        name = unique(f"matrix-{role}")
        add_user(server, name, role)
        made.append(Caller(f"{role} by password", role, client(server, (name, PASSWORD))))
    admin = made[-1].http
    secret = new_token(admin, role="operator")["token"]
    made.append(Caller("operator token of an admin", Role.OPERATOR, bearer(server, secret)))
    viewer = unique("matrix-session")
    add_user(server, viewer, "viewer")
    cookie, csrf = login(server, viewer)
    made.append(Caller("viewer session", Role.VIEWER, session(server, cookie, csrf), True))
    yield made
    for caller in made:
        caller.http.close()


def call(http: httpx.Client, operation: Operation) -> httpx.Response:
    """The answer's status line and headers; a body only for problems (streams stay unread)."""
    body = {"json": {}} if operation.body else {}
    with http.stream(operation.method, operation.url, **body) as response:  # type: ignore[arg-type]
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            response.read()
        return response


def test_every_operation_belongs_to_a_router(operations: list[Operation]) -> None:
    known = requirements()
    strangers = [str(op) for op in operations if (op.method, op.path) not in known]
    assert strangers == [], "operations of no router in jobyard.api.app.ROUTERS"
    documented = {(op.method, op.path) for op in operations}
    assert set(known) - documented == HIDDEN


def test_a_router_is_either_public_or_guarded_for_both_reads_and_changes() -> None:
    # create_app guards a router only when both roles are set: one None would open it.
    for router, read, write in ROUTERS:
        assert (read is None) == (write is None), router.routes
        assert read is None or write is None or write.allows(read), router.routes


def test_the_public_routes_are_few(operations: list[Operation]) -> None:
    public = {str(op) for op in operations if needed(op) is None}
    assert public == {"GET /healthz", "GET /readyz", "POST /login", "POST /logout"}


def test_without_credentials_only_public_routes_answer(
    server: Server, operations: list[Operation]
) -> None:
    with client(server) as anonymous:
        for operation in operations:
            response = call(anonymous, operation)
            if needed(operation) is None:
                assert response.status_code not in (401, 403), operation
                continue
            assert_problem(response, 401)
            challenge = response.headers.get("www-authenticate", "")
            assert challenge.startswith("Basic "), operation


def test_each_role_is_refused_exactly_below_the_routes_requirement(
    operations: list[Operation], callers: list[Caller]
) -> None:
    wrong = []
    for caller in callers:
        for operation in operations:
            if caller.session and str(operation) == "POST /logout":
                continue
            status = call(caller.http, operation).status_code
            role = needed(operation)
            refused = role is not None and not caller.role.allows(role)
            if (status == 403) != refused or status == 401:
                wrong.append(f"{caller.label}: {operation} answered {status}")
    assert wrong == []


def test_every_role_reaches_its_reads(server: Server, callers: list[Caller]) -> None:
    """Not only "not refused": a viewer's list of jobs is the real list."""
    job = server.submit("echo", args={"text": "seen"}, hold=True)
    for caller in callers:
        response = caller.http.get(f"/api/v1/jobs/{job['id']}")
        assert response.status_code == 200, caller.label
        assert response.json()["args"]["text"] == "seen"


def test_a_refusal_says_which_role_is_needed(callers: list[Caller]) -> None:
    viewer = callers[0]
    assert viewer.role is Role.VIEWER
    body = assert_problem(viewer.http.post("/api/v1/jobs", json={"type": "echo"}), 403)
    assert "operator" in body["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/events",
        "/api/v1/jobs/{id}/events",
        "/api/v1/jobs/{id}/logs?follow=true",
    ],
)
def test_event_streams_need_credentials(server: Server, path: str) -> None:
    job = server.submit("echo", args={"text": "streamed"})
    url = path.format(id=job["id"])
    with client(server) as anonymous:
        assert_problem(anonymous.get(url, headers={"Accept": "text/event-stream"}), 401)
    with bearer(server, "jy_not-a-token") as forged:
        assert_problem(forged.get(url), 401)
    # The same request with credentials streams (the check above is not a broken route).
    with server.client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")


def test_a_followed_submit_needs_credentials_and_makes_no_job(server: Server) -> None:
    before = server.client.get("/api/v1/jobs").json()["total"]
    with client(server) as anonymous:
        body = {"type": "echo", "args": {"text": "x"}, "follow": True}
        assert_problem(anonymous.post("/api/v1/jobs", json=body), 401)
    assert server.client.get("/api/v1/jobs").json()["total"] == before


def test_cors_is_closed_by_default(server: Server) -> None:
    with client(server) as anonymous:
        preflight = anonymous.options(
            "/api/v1/jobs",
            headers={
                "Origin": "http://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        simple = anonymous.get("/healthz", headers={"Origin": "http://app.example"})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-credentials" not in preflight.headers
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers


def test_a_password_with_non_ascii_characters_works_over_basic(server: Server) -> None:
    # The challenge says charset="UTF-8" (RFC 7617): the client sends UTF-8.
    name, password = unique("utf8"), "mot-de-passe-très-sûr"
    add_user(server, name, "viewer", password)
    with client(server, (name, password)) as http:
        response = http.get("/api/v1/me")
    assert response.status_code == 200, response.text
    assert response.json()["name"] == name


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!not-base64!!!",
        "Basic bm8tY29sb24=",
        "Basic //79",
        "Bearer",
        "Digest abc",
        "Basic é".encode(),  # not ASCII: base64 cannot say it (it was a 500)
    ],
)
def test_a_malformed_authorization_header_is_a_401_problem(
    server: Server, header: str | bytes
) -> None:
    with httpx.Client(base_url=server.url, headers={"Authorization": header}) as http:
        response = http.get("/api/v1/me")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Basic ")
