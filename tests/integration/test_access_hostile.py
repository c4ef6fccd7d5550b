"""Credentials no user has, on every backend: a 401 like a wrong password, never a 500.

A NUL character cannot even be compared with a PostgreSQL text column; a name
with one is no user's (names are letters, digits and ``. _ @ -``), so it fails
as an unknown name does, throttled and written to the audit log (escaped, as
no backend stores a NUL) alike. Bearer tokens and session cookies are looked
up by their digest, whatever bytes they hold. Also here, on every backend: a
revoke reaches the tokens made with the token, and a logout is audited.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.harness import Server, shared_server
from tests.users import PASSWORD, add_user, assert_problem, bearer, client, login, new_token, unique

server = shared_server()


def audit(server: Server, **query: Any) -> list[dict[str, Any]]:
    response = server.client.get("/api/v1/audit", params={"per_page": 100, **query})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def basic(name: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def test_a_name_with_a_nul_fails_like_an_unknown_name(server: Server) -> None:
    name = unique("nul")
    with client(server) as anonymous:
        as_json = anonymous.post("/login", json={"username": f"{name}\x00", "password": "x"})
        assert "wrong user name or password" in assert_problem(as_json, 401)["detail"]
        form = f"username={quote(name)}%00a&password=x"
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        as_form = anonymous.post("/login", content=form, headers=headers)
        assert as_form.status_code == 401, as_form.text
        assert "Wrong user name or password." in as_form.text
        as_basic = anonymous.get("/api/v1/jobs", headers=basic(f"{name}\x00b", "x"))
        assert "wrong user name or password" in assert_problem(as_basic, 401)["detail"]
    failed = audit(server, action="login", outcome="failed", search=name)
    assert sorted(e["actor"] for e in failed) == [
        f"{name}\\x00",
        f"{name}\\x00a",
        f"{name}\\x00b",
    ]
    assert {e["target"] for e in failed} >= {f"user {name}\\x00"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": b"Bearer jy_\xff\xfe\x80"},
        {"Authorization": b"Bearer jy_" + "\u00e9".encode() * 40},  # UTF-8 bytes
        {"Cookie": 'jobyard_session="jys_\\000\\377"'},  # an octal escape: a NUL once parsed
        {"Cookie": b"jobyard_session=jys_\xff\xfe"},
    ],
)
def test_a_token_or_cookie_of_any_bytes_is_a_401(server: Server, headers: dict[str, Any]) -> None:
    with client(server) as anonymous:
        assert_problem(anonymous.get("/api/v1/me", headers=headers), 401)


def test_revoking_a_token_revokes_the_tokens_made_with_it(server: Server) -> None:
    name = unique("op")
    add_user(server, name, "operator")
    with client(server, (name, PASSWORD)) as http:
        first = new_token(http)
        aside = new_token(http)
        with bearer(server, first["token"]) as script:
            second = new_token(script)
        with bearer(server, second["token"]) as script:
            third = new_token(script, role="viewer")
        assert http.delete(f"/api/v1/tokens/{first['id']}").status_code == 200
        for made in (first, second, third):
            with bearer(server, made["token"]) as script:
                assert_problem(script.get("/api/v1/me"), 401)
        with bearer(server, aside["token"]) as script:
            assert script.get("/api/v1/me").status_code == 200
        listed = {t["id"]: t["revoked_at"] for t in http.get("/api/v1/tokens").json()["items"]}
    assert [listed[t["id"]] is not None for t in (first, second, third, aside)] == [
        True,
        True,
        True,
        False,
    ]


def test_logouts_and_refusals_for_another_origin_are_audited(server: Server) -> None:
    name = unique("view")
    add_user(server, name, "viewer")
    evil = {"Origin": "https://evil.example"}
    with client(server) as browser:
        body = {"username": name, "password": PASSWORD}
        assert_problem(browser.post("/login", json=body, headers=evil), 403)
    cookie, _ = login(server, name)
    with httpx.Client(base_url=server.url, cookies={"jobyard_session": cookie}) as browser:
        assert_problem(browser.post("/logout", headers=evil), 403)
        assert browser.get("/api/v1/me").status_code == 200  # refused: still logged in
        assert browser.post("/logout").status_code == 303
        assert_problem(browser.get("/api/v1/me"), 401)
    entries = audit(server, actor=name)
    found = [(e["action"], e["target"], e["outcome"], e["via"]) for e in reversed(entries)]
    assert found == [
        ("login", f"user {name}", "denied", "password"),
        ("login", f"user {name}", "ok", "session"),
        ("logout", f"user {name}", "denied", "session"),
        ("logout", f"user {name}", "ok", "session"),
    ]
    assert entries[-1]["detail"]["origin"] == "https://evil.example"
