"""``/account``: a user changes their own password from the page, against one real server,
as ``POST /api/v1/me/password`` does (tests/integration/test_access_own_password.py).

Every test makes its own user, so they share the module's server. Wrong current
passwords count with the failed logins of their name and address: the module makes
11 of them, well under the 50 that lock one address out.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

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
FORM = "/account/password"
NEW = "a-new-long-enough-password"
HTMX = {"HX-Request": "true"}


def person(server: Server, role: str = "viewer") -> str:
    name = unique(role)
    add_user(server, name, role)
    return name


def form(current: str = PASSWORD, new: str = NEW, confirm: str | None = None) -> dict[str, str]:
    return {
        "username": "ignored",
        "current_password": current,
        "new_password": new,
        "confirm_password": new if confirm is None else confirm,
    }


def signs_in(server: Server, name: str, password: str) -> bool:
    with client(server, (name, password)) as http:
        return http.get("/api/v1/me").status_code == 200


def entries(server: Server, name: str) -> list[dict[str, Any]]:
    query = {"actor": name, "action": "change_password", "per_page": 100}
    response = server.client.get("/api/v1/audit", params=query)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_the_page_is_linked_from_the_header_and_labels_its_fields(server: Server) -> None:
    name = person(server)
    cookie, _ = login(server, name)
    with session(server, cookie) as browser:
        assert 'href="/account"' in browser.get("/jobs").text
        page = browser.get("/account")
    assert page.status_code == 200
    assert f"<strong>{name}</strong>" in page.text
    for field, complete in (
        ("current-password", "current-password"),
        ("new-password", "new-password"),
        ("confirm-password", "new-password"),
    ):
        assert f'<label for="{field}">' in page.text
        tag = page.text.split(f'id="{field}"', 1)[1].split(">", 1)[0]
        assert f'autocomplete="{complete}"' in tag
        assert 'type="password"' in tag
    assert 'aria-describedby="help-new-password"' in page.text  # the rule, read with the field


def test_a_change_keeps_this_session_and_ends_the_others(server: Server) -> None:
    name = person(server)
    here, csrf = login(server, name)
    elsewhere, _ = login(server, name)
    with session(server, here, csrf) as browser:
        changed = browser.post(FORM, data=form(), headers=HTMX)
    assert changed.status_code == 200, changed.text
    assert 'id="password-changed"' in changed.text
    assert "<main" not in changed.text  # htmx gets the form alone
    assert NEW not in changed.text
    assert PASSWORD not in changed.text
    renewed = changed.cookies["jobyard_session"]
    assert renewed != here
    assert "httponly" in changed.headers["set-cookie"].lower()
    with session(server, renewed) as browser:
        assert browser.get("/api/v1/me").json()["csrf_token"] == csrf  # the page's token
        assert browser.get("/account").status_code == 200  # signed in still
    for ended in (here, elsewhere):
        with session(server, ended) as other_tab:
            assert_problem(other_tab.get("/api/v1/me"), 401)
    assert not signs_in(server, name, PASSWORD)
    assert signs_in(server, name, NEW)
    [entry] = entries(server, name)
    assert (entry["via"], entry["target"], entry["outcome"]) == ("session", FORM, "ok")


def test_a_wrong_current_password_is_shown_by_its_field_and_changes_nothing(
    server: Server,
) -> None:
    name = person(server)
    cookie, csrf = login(server, name)
    with session(server, cookie, csrf) as browser:
        refused = browser.post(FORM, data=form(current="not-the-password"), headers=HTMX)
        assert browser.get("/account").status_code == 200  # the session goes on
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert f"that is not the current password of &#39;{name}&#39;" in refused.text
    assert 'id="error-current_password"' in refused.text
    assert 'aria-describedby="error-current_password' in refused.text
    assert "set-cookie" not in refused.headers
    assert signs_in(server, name, PASSWORD)
    [entry] = entries(server, name)
    assert (entry["target"], entry["outcome"]) == (FORM, "denied")


TOO_LONG = "x" * 1001
NUL = "nul\x00pass-123"
BAD = {
    "mismatch": (form(confirm=NEW + "!"), "confirm_password", "does not match"),
    "short": (form(new="short"), "new_password", "at least 8 characters"),
    "same": (form(new=PASSWORD), "new_password", "must differ from the current password"),
    "no-current": (form(current=""), "current_password", "at least 1 character"),
    "long": (form(new=TOO_LONG), "new_password", "at most 1000 characters"),
    "nothing": ({}, "current_password", "at least 1 character"),
    # What the API refuses in any JSON text: a password the page set could not be given
    # to POST /api/v1/me/password (nor jobyard passwd) as the current one.
    "nul": (form(new=NUL), "new_password", "contains a NUL character"),
    "nul-current": (form(current=PASSWORD + "\x00"), "current_password", "a NUL character"),
    "nul-confirm": (form(confirm=NUL), "confirm_password", "contains a NUL character"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_a_422_by_its_field_and_changes_nothing(server: Server, case: str) -> None:
    sent, field, message = BAD[case]
    name = person(server)
    cookie, csrf = login(server, name)
    with session(server, cookie, csrf) as browser:
        answer = browser.post(FORM, data=sent, headers=HTMX)
    assert answer.status_code == 422, answer.text
    said = answer.text.split(f'id="error-{field}">', 1)[1].split("<", 1)[0]
    assert message in said
    assert "set-cookie" not in answer.headers
    assert signs_in(server, name, PASSWORD)
    assert entries(server, name) == []


def test_a_file_for_a_password_is_a_422_too(server: Server) -> None:
    name = person(server)
    cookie, csrf = login(server, name)
    with session(server, cookie, csrf) as browser:
        files = {"current_password": ("p.txt", PASSWORD.encode())}
        sent = {k: v for k, v in form().items() if k != "current_password"}
        answer = browser.post(FORM, data=sent, files=files, headers=HTMX)
    assert answer.status_code == 422, answer.text
    assert 'id="error-current_password"' in answer.text
    assert signs_in(server, name, PASSWORD)


def test_the_form_needs_the_csrf_token(server: Server) -> None:
    name = person(server)
    cookie, _ = login(server, name)
    with session(server, cookie) as browser:  # as another site's form would post it
        assert_problem(browser.post(FORM, data=form(), headers=HTMX), 403)
    assert signs_in(server, name, PASSWORD)


def test_ten_wrong_passwords_are_throttled_like_logins(server: Server) -> None:
    name = person(server)
    cookie, csrf = login(server, name)
    with session(server, cookie, csrf) as browser:
        for _ in range(10):
            wrong = form(current="not-the-password")
            assert browser.post(FORM, data=wrong, headers=HTMX).status_code == 403
        throttled = browser.post(FORM, data=form(), headers=HTMX)  # the right one waits now
    assert throttled.status_code == 429
    assert f"too many failed logins for &#39;{name}&#39;" in throttled.text
    assert 1 <= int(throttled.headers["retry-after"]) <= 15 * 60
    with client(server) as other:  # and so are the logins of that name from here
        refused = other.post("/login", json={"username": name, "password": PASSWORD})
        assert_problem(refused, 429)
    assert {entry["outcome"] for entry in entries(server, name)} == {"denied"}  # not changed


def test_with_a_token_the_page_asks_the_password_too_and_the_token_goes_on(
    server: Server,
) -> None:
    name = person(server, "operator")
    with client(server, (name, PASSWORD)) as http:
        token = new_token(http)["token"]
    with bearer(server, token) as browser:
        page = browser.post(FORM, data=form())  # a plain post: the whole page
        assert browser.get("/account").status_code == 200
    assert page.status_code == 200, page.text
    assert "<main" in page.text
    assert 'id="password-changed"' in page.text
    assert "set-cookie" not in page.headers  # no session to renew
    assert signs_in(server, name, NEW)


def test_a_stranger_goes_to_the_login(server: Server) -> None:
    with httpx.Client(base_url=server.url) as stranger:
        response = stranger.get("/account")
        posted = stranger.post(FORM, data=form())
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account"
    assert posted.status_code == 303


def test_a_form_posted_once_the_session_ended_goes_back_to_the_page_after_the_login(
    server: Server,
) -> None:
    """Not to ``/account/password``, which the login would fetch with a GET (a 405)."""
    name = person(server)
    cookie, csrf = login(server, name)
    with session(server, cookie, csrf) as browser:
        assert browser.post("/logout").status_code == 303  # as if it had expired
        posted = browser.post(FORM, data=form(), headers={"Referer": f"{server.url}/account"})
        blind = browser.post(FORM, data=form())  # a browser that sends no Referer
    assert posted.status_code == 303
    assert posted.headers["location"] == "/login?next=/account"
    assert blind.status_code == 303
    assert blind.headers["location"] == "/login?next=/"
    assert signs_in(server, name, PASSWORD)
