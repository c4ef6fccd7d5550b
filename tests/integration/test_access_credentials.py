"""API tokens, browser sessions and the login throttle, against one real server.

Every test makes its own users (unique names), so they share the module's
server. The throttle counts failures per address too (50 from one address lock
it out): the whole module makes far fewer than that.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import pytest

from tests.harness import Server, shared_server, wait_for
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

HELD = {"type": "echo", "args": {"text": "held"}, "hold": True}


Person = Callable[[str], tuple[str, httpx.Client]]


@pytest.fixture(scope="module")
def regular(server: Server) -> str:
    """An operator the session tests share (their logins are remembered: cheaper)."""
    name = unique("regular")
    add_user(server, name, "operator")
    return name


@pytest.fixture
def person(server: Server) -> Iterator[Person]:
    """Makes a new user of a role: their name and a client acting as them by password."""
    with ExitStack() as clients:

        def make(role: str) -> tuple[str, httpx.Client]:
            name = unique(role)
            add_user(server, name, role)
            return name, clients.enter_context(client(server, (name, PASSWORD)))

        yield make


# -- tokens -------------------------------------------------------------------------
def test_a_token_is_shown_once_and_works_as_a_bearer(server: Server, person: Person) -> None:
    name, http = person("operator")
    made = new_token(http)
    assert made["token"].startswith("jy_")
    assert made["user"] == name
    assert made["role"] == "operator"  # the owner's by default
    listed = http.get("/api/v1/tokens")
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["items"]] == [made["id"]]
    assert "token" not in listed.json()["items"][0]
    assert made["token"] not in listed.text
    with bearer(server, made["token"]) as script:
        me = script.get("/api/v1/me").json()
        assert (me["name"], me["role"], me["via"]) == (name, "operator", "token")
        assert script.post("/api/v1/jobs", json=HELD).status_code == 201


def test_a_token_cannot_have_a_higher_role_than_its_owner(server: Server, person: Person) -> None:
    _, http = person("viewer")
    for role in ("operator", "admin"):
        body = assert_problem(http.post("/api/v1/tokens", json={"name": "t", "role": role}), 403)
        assert role in body["detail"]
    assert http.get("/api/v1/tokens").json()["total"] == 0
    assert new_token(http, role="viewer")["role"] == "viewer"


def test_a_refused_token_says_why_in_plain_words(server: Server, person: Person) -> None:
    _, http = person("operator")
    refused = http.post("/api/v1/tokens", json={"name": "t", "role": "admin"})
    assert (
        "an operator cannot create a token with role admin"
        in assert_problem(refused, 403)["detail"]
    )
    for lifetime in (-5, 0, "0s"):
        body = assert_problem(
            http.post("/api/v1/tokens", json={"name": "t", "expires_in": lifetime}), 422
        )
        assert "greater than 0" in body["errors"][0]["message"], body
    for lifetime in ("4000d", 10 * 365 * 86400 + 1):
        body = assert_problem(
            http.post("/api/v1/tokens", json={"name": "t", "expires_in": lifetime}), 422
        )
        said = "at most 10 years (3650d); null or `never` for a token that lasts"
        assert body["errors"][0]["message"].endswith(said), body
    soon = http.post("/api/v1/tokens", json={"name": "t", "expires_in": "soon"})
    assert assert_problem(soon, 422)["errors"][0]["message"].startswith("invalid duration 'soon'")
    lasting = http.post("/api/v1/tokens", json={"name": "t", "expires_in": "Never"})
    assert lasting.status_code == 201, lasting.text
    assert lasting.json()["expires_at"] is None


def test_a_tokens_role_caps_even_an_admin_owner(server: Server) -> None:
    made = new_token(server.client, role="viewer")
    with bearer(server, made["token"]) as script:
        assert script.get("/api/v1/me").json()["role"] == "viewer"
        assert script.get("/api/v1/jobs").status_code == 200
        assert_problem(script.post("/api/v1/jobs", json=HELD), 403)
        assert_problem(script.get("/api/v1/users"), 403)
        # Nor can it mint itself a stronger token, or see everyone's.
        assert_problem(script.post("/api/v1/tokens", json={"name": "up", "role": "admin"}), 403)
        assert_problem(script.get("/api/v1/tokens", params={"all": "true"}), 403)


def test_an_expired_token_is_refused(server: Server) -> None:
    made = new_token(server.client, expires_in=1)
    assert made["expires_at"] is not None
    with bearer(server, made["token"]) as script:
        refused = wait_for(
            lambda: (r := script.get("/api/v1/me")).status_code == 401 and r,
            timeout=10,
            what="the token to expire",
        )
    assert "expired" in assert_problem(refused, 401)["detail"]


def test_a_token_cannot_make_a_token_that_outlives_it(server: Server) -> None:
    made = new_token(server.client, expires_in=3600)
    with bearer(server, made["token"]) as script:
        child = new_token(script, expires_in=None)
    assert child["expires_at"] == made["expires_at"]


def test_a_revoked_token_is_refused_at_once(server: Server, person: Person) -> None:
    _, http = person("operator")
    made = new_token(http)
    with bearer(server, made["token"]) as script:
        assert script.get("/api/v1/me").status_code == 200
        revoked = http.delete(f"/api/v1/tokens/{made['id']}")
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        assert_problem(script.get("/api/v1/me"), 401)
    listed = http.get("/api/v1/tokens").json()["items"]
    assert [t["revoked_at"] is not None for t in listed] == [True]


def test_only_an_admin_revokes_someone_elses_token(server: Server, person: Person) -> None:
    _, owner = person("operator")
    _, other = person("operator")
    made = new_token(owner)
    assert_problem(other.delete(f"/api/v1/tokens/{made['id']}"), 404)
    assert made["id"] not in [t["id"] for t in other.get("/api/v1/tokens").json()["items"]]
    everyone = server.client.get("/api/v1/tokens", params={"all": "true"}).json()["items"]
    assert made["id"] in [t["id"] for t in everyone]
    assert server.client.delete(f"/api/v1/tokens/{made['id']}").status_code == 200
    with bearer(server, made["token"]) as script:
        assert_problem(script.get("/api/v1/me"), 401)


def test_a_demoted_users_token_loses_the_power(server: Server, person: Person) -> None:
    name, http = person("operator")
    made = new_token(http)
    with bearer(server, made["token"]) as script:
        assert script.post("/api/v1/jobs", json=HELD).status_code == 201
        demoted = server.client.patch(f"/api/v1/users/{name}", json={"role": "viewer"})
        assert demoted.status_code == 200, demoted.text
        assert_problem(script.post("/api/v1/jobs", json=HELD), 403)
        assert script.get("/api/v1/me").json()["role"] == "viewer"


def test_removing_a_user_ends_their_tokens_and_sessions(server: Server, person: Person) -> None:
    name, http = person("operator")
    made = new_token(http)
    cookie, _ = login(server, name)
    with bearer(server, made["token"]) as script, session(server, cookie) as browser:
        assert script.get("/api/v1/me").status_code == 200
        assert browser.get("/api/v1/me").status_code == 200
        assert server.client.delete(f"/api/v1/users/{name}").status_code == 204
        assert_problem(script.get("/api/v1/me"), 401)
        assert_problem(browser.get("/api/v1/me"), 401)
    assert_problem(http.get("/api/v1/me"), 401)
    everyone = server.client.get("/api/v1/tokens", params={"all": "true"}).json()["items"]
    assert made["id"] not in [t["id"] for t in everyone]


def test_a_new_password_ends_the_old_one_and_the_sessions(server: Server, person: Person) -> None:
    name, http = person("viewer")
    assert http.get("/api/v1/me").status_code == 200  # remembered by the server now
    cookie, _ = login(server, name)
    changed = server.client.patch(f"/api/v1/users/{name}", json={"password": "another-password"})
    assert changed.status_code == 200, changed.text
    assert_problem(http.get("/api/v1/me"), 401)
    with session(server, cookie) as browser:
        assert_problem(browser.get("/api/v1/me"), 401)
    with client(server, (name, "another-password")) as again:
        assert again.get("/api/v1/me").status_code == 200


# -- sessions -----------------------------------------------------------------------
def test_a_json_login_sets_a_guarded_cookie_and_returns_the_csrf_token(
    server: Server, regular: str
) -> None:
    name = regular
    with client(server) as browser:
        response = browser.post("/login", json={"username": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["role"], body["via"]) == (name, "operator", "session")
    assert len(body["csrf_token"]) >= 32
    set_cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=lax" in set_cookie.lower()
    assert "secure" not in attributes  # plain HTTP here: a Secure cookie would never come back
    cookie = response.cookies["jobyard_session"]
    assert cookie.startswith("jys_")
    with session(server, cookie) as browser:
        me = browser.get("/api/v1/me").json()
    assert me["csrf_token"] == body["csrf_token"]


def test_a_login_reads_json_as_every_route_does(server: Server, regular: str) -> None:
    """A media type of any case is JSON, and a body that is not JSON is a 400, as the
    docs say of any request (they were 422 "invalid login", and nesting a 500)."""
    body = json.dumps({"username": regular, "password": PASSWORD})
    with client(server) as browser:
        for media in ("Application/JSON", "application/json; charset=utf-8"):
            sent = browser.post("/login", content=body, headers={"Content-Type": media})
            assert sent.status_code == 200, (media, sent.text)
        broken = browser.post(
            "/login", content="{bad", headers={"Content-Type": "application/json"}
        )
        assert "not valid JSON" in assert_problem(broken, 400)["detail"]
        deep = browser.post(
            "/login", content="[" * 100_000, headers={"Content-Type": "application/json"}
        )
        assert "recursion limit" in assert_problem(deep, 400)["detail"]  # not a 500


def test_a_change_with_the_cookie_needs_the_csrf_token(server: Server, regular: str) -> None:
    name = regular
    cookie, csrf = login(server, name)
    with session(server, cookie) as browser:
        assert browser.get("/api/v1/jobs").status_code == 200
        body = assert_problem(browser.post("/api/v1/jobs", json=HELD), 403)
        assert "X-CSRF-Token: it is missing" in body["detail"]
        wrong = browser.post("/api/v1/jobs", json=HELD, headers={"X-CSRF-Token": "x" + csrf})
        assert "does not match" in assert_problem(wrong, 403)["detail"]
        right = browser.post("/api/v1/jobs", json=HELD, headers={"X-CSRF-Token": csrf})
        assert right.status_code == 201, right.text
        assert right.json()["state"] == "held"


def test_a_refused_csrf_is_in_the_audit_log(server: Server, person: Person) -> None:
    name, _ = person("operator")
    cookie, _ = login(server, name)
    with session(server, cookie) as browser:
        assert_problem(browser.post("/api/v1/jobs", json=HELD), 403)
    query = {"actor": name, "outcome": "denied"}
    entries = server.client.get("/api/v1/audit", params=query).json()["items"]
    assert [(e["action"], e["via"]) for e in entries] == [("submit", "session")]


def test_a_change_by_password_from_another_sites_page_is_refused(
    server: Server, regular: str
) -> None:
    # A browser resends a password it was once asked for, also with another site's form.
    before = server.client.get("/api/v1/jobs").json()["total"]
    with client(server, (regular, PASSWORD)) as http:
        for origin in ("https://evil.example", "null"):
            refused = http.post("/api/v1/jobs", json=HELD, headers={"Origin": origin})
            assert "another site" in assert_problem(refused, 403)["detail"]
        assert server.client.get("/api/v1/jobs").json()["total"] == before
        read = http.get("/api/v1/jobs", headers={"Origin": "https://evil.example"})
        assert read.status_code == 200
        same = http.post("/api/v1/jobs", json=HELD, headers={"Origin": server.url})
        assert same.status_code == 201, same.text
        assert http.post("/api/v1/jobs", json=HELD).status_code == 201  # a script: no Origin


def test_another_sessions_csrf_token_does_not_do(server: Server, regular: str) -> None:
    name = regular
    cookie, _ = login(server, name)
    _, other_csrf = login(server, name)
    with session(server, cookie, other_csrf) as browser:
        assert_problem(browser.post("/api/v1/jobs", json=HELD), 403)


def form_login(server: Server, name: str, password: str, target: str) -> httpx.Response:
    form = urlencode({"username": name, "password": password, "next": target})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    with client(server) as browser:
        return browser.post("/login", content=form, headers=headers)


def test_a_form_login_goes_on_to_next(server: Server, regular: str) -> None:
    name = regular
    response = form_login(server, name, PASSWORD, "/api/v1/jobs?state=failed")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/api/v1/jobs?state=failed"
    assert response.cookies["jobyard_session"].startswith("jys_")


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/steal",
        "//evil.example/steal",
        "/\\evil.example/steal",
        "\\\\evil.example/steal",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
    ],
)
def test_a_form_login_never_goes_on_to_another_site(
    server: Server, regular: str, target: str
) -> None:
    name = regular
    response = form_login(server, name, PASSWORD, target)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    # Browsers read a backslash in a URL as a slash: /\host would be //host, another site.
    assert location.startswith("/"), location
    assert not location.replace("\\", "/").startswith("//"), location
    assert urlsplit(urljoin(server.url, location)).netloc == urlsplit(server.url).netloc


def test_a_failed_form_login_shows_the_page_again(server: Server, regular: str) -> None:
    name = regular
    response = form_login(server, name, "wrong-password", "https://evil.example")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert "Wrong user name or password." in response.text
    assert "jobyard_session" not in response.cookies
    assert 'name="next" value="/"' in response.text


def test_logout_ends_the_session(server: Server, regular: str) -> None:
    name = regular
    cookie, _ = login(server, name)
    with session(server, cookie) as browser:
        assert browser.get("/api/v1/me").status_code == 200
        response = browser.post("/logout")
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
        assert 'jobyard_session=""' in response.headers["set-cookie"]
        assert "ended or expired" in assert_problem(browser.get("/api/v1/me"), 401)["detail"]


def test_a_login_from_another_origin_is_refused(server: Server, regular: str) -> None:
    name = regular
    body = {"username": name, "password": PASSWORD}
    with client(server) as browser:
        # "null": a sandboxed frame or a page opened from a file, on any site.
        for origin in ("https://evil.example", "null"):
            refused = browser.post("/login", json=body, headers={"Origin": origin})
            assert "a login posted by another site" in assert_problem(refused, 403)["detail"]
            assert "jobyard_session" not in refused.cookies
            refused = browser.post("/logout", headers={"Origin": origin})
            assert "a logout posted by another site" in assert_problem(refused, 403)["detail"]
        same = browser.post("/login", json=body, headers={"Origin": server.url})
    assert same.status_code == 200, same.text


# -- the throttle -------------------------------------------------------------------
def failed_logins(server: Server, name: str) -> list[dict[str, Any]]:
    query = {"actor": name, "action": "login", "outcome": "failed", "per_page": 100}
    response = server.client.get("/api/v1/audit", params=query)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def assert_throttled(response: httpx.Response) -> None:
    assert_problem(response, 429)
    assert 1 <= int(response.headers["retry-after"]) <= 15 * 60


def test_ten_wrong_passwords_lock_a_login_out(server: Server, person: Person) -> None:
    name, _ = person("viewer")
    with client(server) as browser:
        for _ in range(10):
            wrong = browser.post("/login", json={"username": name, "password": "not-it-at-all"})
            assert_problem(wrong, 401)
        assert_throttled(browser.post("/login", json={"username": name, "password": "nope"}))
        # The right password waits too: that is what makes guessing slow.
        assert_throttled(browser.post("/login", json={"username": name, "password": PASSWORD}))
    entries = failed_logins(server, name)
    assert len(entries) == 10
    assert {(e["actor"], e["target"], e["address"]) for e in entries} == {
        (name, f"user {name}", "127.0.0.1")
    }


def test_a_throttled_form_login_shows_the_page_again(server: Server, person: Person) -> None:
    name, _ = person("viewer")
    for _ in range(10):
        assert form_login(server, name, "not-it-at-all", "/jobs").status_code == 401
    response = form_login(server, name, PASSWORD, "/jobs")  # the right one waits too
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("text/html")
    wait = int(response.headers["retry-after"])
    assert 1 <= wait <= 15 * 60
    assert f"Too many failed logins: try again in {wait} s." in response.text
    assert 'name="next" value="/jobs"' in response.text
    assert "jobyard_session" not in response.cookies


def test_ten_wrong_basic_passwords_lock_basic_out(server: Server, person: Person) -> None:
    name, _ = person("operator")
    with client(server, (name, "not-it-at-all")) as script:
        for _ in range(10):
            assert_problem(script.get("/api/v1/me"), 401)
        assert_throttled(script.get("/api/v1/me"))
    with client(server, (name, PASSWORD)) as script:
        assert_throttled(script.get("/api/v1/me"))
    assert len(failed_logins(server, name)) == 10
    # Another user from the same address is not locked out by this one.
    _, other = person("viewer")
    assert other.get("/api/v1/me").status_code == 200


def test_a_name_with_a_nul_is_throttled_like_any_other(server: Server) -> None:
    name = f"{unique('nul')}\x00"  # no user's, and never looked up (see test_access_hostile)
    with client(server, (name, "not-it-at-all")) as script:
        for _ in range(10):
            assert_problem(script.get("/api/v1/me"), 401)
        assert_throttled(script.get("/api/v1/me"))
    assert len(failed_logins(server, name.replace("\x00", "\\x00"))) == 10
