"""Access-control test helpers: users made through the API, and clients acting as them.

The tests' servers create the admin :data:`tests.harness.ADMIN`; these helpers
add the other people of a test through that admin, as a deployment would, and
give each a client of their own (HTTP Basic, a bearer token or a session cookie).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.harness import Server

PASSWORD = "a-long-enough-password"
PROBLEM = "application/problem+json"


def unique(prefix: str) -> str:
    """A name no other test of the session uses (servers are shared by a module)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def add_user(server: Server, name: str, role: str, password: str = PASSWORD) -> dict[str, Any]:
    response = server.client.post(
        "/api/v1/users", json={"name": name, "role": role, "password": password}
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


def client(server: Server, auth: httpx.Auth | tuple[str, str] | None = None) -> httpx.Client:
    """A client of ``server`` with these credentials only (none: anonymous)."""
    return httpx.Client(base_url=server.url, timeout=30, auth=auth)


def bearer(server: Server, secret: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {secret}"}
    )


def new_token(http: httpx.Client, **body: Any) -> dict[str, Any]:
    """A token made by the caller of ``http``: its record with the secret (``token``)."""
    response = http.post("/api/v1/tokens", json={"name": unique("token"), **body})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def login(server: Server, name: str, password: str = PASSWORD) -> tuple[str, str]:
    """A browser session of ``name``: the cookie's value and the CSRF token."""
    with client(server) as http:
        response = http.post("/login", json={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return response.cookies["jobyard_session"], response.json()["csrf_token"]


def session(server: Server, cookie: str, csrf: str | None = None) -> httpx.Client:
    """A client sending the session cookie (and the CSRF header when given), as a browser."""
    headers = {"Cookie": f"jobyard_session={cookie}"}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return httpx.Client(base_url=server.url, timeout=30, headers=headers)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status``; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"]
    return body
