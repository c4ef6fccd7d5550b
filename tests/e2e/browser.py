"""A real browser for the UI tests: Debian's Chromium driven by Playwright, never downloaded.

One browser per test module (:func:`module_browser`); each test gets a fresh context
logged in as someone (:func:`logged_in`). Screenshots go to the git-ignored
``artifacts/`` folder at the top of the checkout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.harness import ADMIN, Server

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WAIT = 20_000  # ms: how long a live change may take to show
expect.set_options(timeout=WAIT)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for the tests of one module (skipped, or failed in CI, without it)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("JOBYARD_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


def logged_in(
    browser: Browser, server: Server, who: tuple[str, str] = ADMIN, viewport: dict[str, int] = WIDE
) -> BrowserContext:
    """A new browser context with a session of ``who`` (logged in through the form)."""
    context = browser.new_context(base_url=server.url, viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(WAIT)
    page = context.new_page()
    page.goto("/login")
    page.fill("#username", who[0])
    page.fill("#password", who[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    return context


def shot(page: Page, name: str) -> None:
    """Keep a screenshot of the page as it is now in ``artifacts/`` (the full page)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
