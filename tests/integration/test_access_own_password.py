"""``POST /api/v1/me/password``: a user changes their own password, proving it with the
current one, against one real server (and the Python clients over it).

Every test makes its own users (unique names), so they share the module's server.
Wrong current passwords count with the failed logins of their name and address:
the module makes 10 of them, well under the 50 that lock one address out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from jobyard.client import AsyncClient, Client, Forbidden
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
PATH = "/api/v1/me/password"
NEW = "a-new-long-enough-password"


def change(http: httpx.Client, current: str = PASSWORD, new: str = NEW) -> httpx.Response:
    return http.post(PATH, json={"current_password": current, "new_password": new})


def person(server: Server, role: str = "viewer") -> str:
    name = unique(role)
    add_user(server, name, role)
    return name


def entries(server: Server, name: str) -> list[dict[str, Any]]:
    query = {"actor": name, "action": "change_password", "per_page": 100}
    response = server.client.get("/api/v1/audit", params=query)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_viewer_changes_their_password_and_their_other_sessions_end(server: Server) -> None:
    name = person(server)
    with client(server, (name, PASSWORD)) as old:
        assert old.get("/api/v1/me").status_code == 200  # remembered by the server now
        token = new_token(old)
    here, csrf = login(server, name)
    elsewhere, _ = login(server, name)
    with session(server, here, csrf) as browser:
        changed = change(browser)
        assert changed.status_code == 204, changed.text
    # The session it came from goes on under a new cookie (the old one may be known),
    # with its CSRF token; the old cookie ends with the user's other sessions.
    renewed = changed.cookies["jobyard_session"]
    assert renewed != here
    assert "httponly" in changed.headers["set-cookie"].lower()
    with session(server, renewed) as browser:
        assert browser.get("/api/v1/me").json()["csrf_token"] == csrf
    for ended in (here, elsewhere):
        with session(server, ended) as other_tab:
            assert_problem(other_tab.get("/api/v1/me"), 401)
    with client(server, (name, PASSWORD)) as old:
        assert_problem(old.get("/api/v1/me"), 401)
    with client(server, (name, NEW)) as new:
        assert new.get("/api/v1/me").json()["via"] == "password"
    with bearer(server, token["token"]) as script:  # tokens go on (docs/access.md)
        assert script.get("/api/v1/me").status_code == 200
    [entry] = entries(server, name)
    assert (entry["via"], entry["target"], entry["outcome"]) == ("session", PATH, "ok")


def test_a_change_by_password_ends_that_password_at_once(server: Server) -> None:
    name = person(server, "operator")
    with client(server, (name, PASSWORD)) as http:
        changed = change(http)
        assert changed.status_code == 204
        assert "set-cookie" not in changed.headers  # no session to renew
        assert_problem(http.get("/api/v1/me"), 401)


def test_a_wrong_current_password_is_refused_and_counts_as_a_failed_login(
    server: Server,
) -> None:
    name = person(server)
    with client(server, (name, PASSWORD)) as http:
        token = new_token(http)
    with bearer(server, token["token"]) as script:
        for _ in range(10):
            refused = assert_problem(change(script, current="not-the-password"), 403)
            assert refused["detail"] == f"that is not the current password of {name!r}"
        # The right one waits now, as a login does: that is what makes guessing slow.
        throttled = change(script)
        assert_problem(throttled, 429)
        assert 1 <= int(throttled.headers["retry-after"]) <= 15 * 60
    with client(server) as browser:
        login_attempt = browser.post("/login", json={"username": name, "password": PASSWORD})
        assert_problem(login_attempt, 429)
    denied = entries(server, name)
    assert len(denied) == 10
    assert {(e["outcome"], e["via"], e["address"]) for e in denied} == {
        ("denied", "token", "127.0.0.1")
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
        ({"current_password": PASSWORD, "new_password": PASSWORD}, "new_password"),
        ({"current_password": "", "new_password": NEW}, "current_password"),
        ({"new_password": NEW}, "current_password"),
        ({"current_password": PASSWORD, "new_password": NEW, "role": "admin"}, "role"),
        ({"current_password": PASSWORD, "new_password": 12345678}, "new_password"),
        ({"current_password": PASSWORD, "new_password": "x" * 1001}, "new_password"),
        ({"current_password": PASSWORD, "new_password": "nul\x00pass-123"}, "new_password"),
        ({"current_password": PASSWORD + "\x00", "new_password": NEW}, "current_password"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(
    server: Server, body: dict[str, Any], field: str
) -> None:
    name = person(server)
    with client(server, (name, PASSWORD)) as http:
        problem = assert_problem(http.post(PATH, json=body), 422)
        assert field in [error["field"].removeprefix("body.") for error in problem["errors"]]
        assert http.get("/api/v1/me").status_code == 200  # the password is the same


def test_a_change_needs_credentials(server: Server) -> None:
    with client(server) as anonymous:
        assert_problem(change(anonymous), 401)


def test_the_clients_change_the_callers_password(server: Server) -> None:
    name = person(server, "operator")
    with Client(server.url, auth=(name, PASSWORD)) as sync:
        with pytest.raises(Forbidden) as caught:
            sync.change_password("not-the-password", NEW)
        assert caught.value.status == 403
        sync.change_password(PASSWORD, NEW)

    async def again() -> str:
        async with AsyncClient(server.url, auth=(name, NEW)) as asynchronous:
            await asynchronous.change_password(NEW, PASSWORD)
        async with AsyncClient(server.url, auth=(name, PASSWORD)) as back:
            return (await back.me()).name

    assert asyncio.run(again()) == name


def test_an_admin_who_sets_their_own_password_keeps_the_session_it_came_from(
    server: Server,
) -> None:
    name, other = person(server, "admin"), person(server)
    here, csrf = login(server, name)
    elsewhere, _ = login(server, name)
    with session(server, here, csrf) as browser:
        theirs = browser.patch(f"/api/v1/users/{other}", json={"password": NEW})
        assert theirs.status_code == 200, theirs.text
        assert "set-cookie" not in theirs.headers  # another user's: nothing to renew here
        changed = browser.patch(f"/api/v1/users/{name}", json={"password": NEW})
        assert changed.status_code == 200, changed.text
    renewed = changed.cookies["jobyard_session"]
    assert renewed != here
    with session(server, renewed) as browser:
        assert browser.get("/api/v1/me").json()["csrf_token"] == csrf
    for ended in (here, elsewhere):
        with session(server, ended) as other_tab:
            assert_problem(other_tab.get("/api/v1/me"), 401)
    with client(server, (name, NEW)) as new:
        assert new.get("/api/v1/me").json()["via"] == "password"
