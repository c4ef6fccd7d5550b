"""A user changes their password on their account page, in a real browser."""

from __future__ import annotations

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.databases import BACKENDS
from tests.e2e.browser import logged_in, shot
from tests.harness import Server, shared_server
from tests.users import PASSWORD, add_user, assert_problem, session, unique

server = shared_server(backends=[BACKENDS[0]])
NEW = "a-new-long-enough-password"


def session_cookie(context: BrowserContext) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "jobyard_session")


def fill(page: Page, current: str, new: str, again: str) -> None:
    page.get_by_label("Current password").fill(current)
    page.get_by_label("New password", exact=True).fill(new)
    page.get_by_label("New password again").fill(again)
    page.get_by_role("button", name="Change password").click()


def log_in(page: Page, name: str, password: str) -> None:
    page.goto("/login")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_a_user_changes_their_password_and_stays_signed_in(
    browser: Browser, server: Server
) -> None:
    name = unique("val")
    add_user(server, name, "viewer")
    context = logged_in(browser, server, (name, PASSWORD))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto("/jobs")
        page.get_by_role("link", name=name).click()  # the user's name in the header
        page.wait_for_url("**/account")
        old_cookie = session_cookie(context)

        fill(page, PASSWORD, NEW, NEW + "!")
        expect(page.locator("#error-confirm_password")).to_contain_text("does not match")
        expect(page.get_by_label("New password again")).to_have_attribute("aria-invalid", "true")
        fill(page, "not-the-password", NEW, NEW)  # a 403: its form is shown all the same
        expect(page.locator("#error-current_password")).to_contain_text("not the current password")
        expect(page.locator("#password-changed")).to_have_count(0)
        shot(page, "account-wrong-password")
        fill(page, PASSWORD, NEW, NEW)
        expect(page.locator("#password-changed")).to_have_text("Your password is changed.")
        expect(page.locator(".field-error")).to_have_count(0)
        expect(page.get_by_label("Current password")).to_have_value("")  # never refilled
        shot(page, "account-changed")

        # This browser goes on under the renewed cookie; the old one has ended.
        assert session_cookie(context) != old_cookie
        page.goto("/jobs")
        expect(page.locator("h1")).to_have_text("Jobs")
        with session(server, old_cookie) as old:
            assert_problem(old.get("/api/v1/me"), 401)
    finally:
        context.close()
    assert errors == []

    stranger = browser.new_context(base_url=server.url)
    try:
        page = stranger.new_page()
        log_in(page, name, PASSWORD)
        expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
        log_in(page, name, NEW)
        page.wait_for_url(f"{server.url}/")
        expect(page.get_by_role("link", name=name)).to_be_visible()
    finally:
        stranger.close()
