"""An open event stream ends once its caller's credentials no longer allow it.

The module's server checks a stream's credentials again every :data:`RECHECK`
seconds (``JOBYARD_STREAM_RECHECK``), so each stream here must end with a
``denied`` event within that interval and a margin of the change that took its
credentials away: a revoked token, a removed user, a logout. A stream whose
credentials still hold goes on, pings and all. Streams are read with a read
timeout well under the 15 s keep-alive: one that is never ended fails, not hangs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from jobyard.client import Client, Unauthorized
from tests.harness import Server, Sse, read_sse, shared_server, wait_for
from tests.users import PASSWORD, add_user, bearer, client, login, new_token, session, unique

RECHECK = 0.3
# The check's own time, a submit's and a loaded machine's: what the test holds is that
# the stream ends soon after the change, not that it ends within a tight deadline.
MARGIN = 8.0
server = shared_server(backends=["sqlite"], env={"JOBYARD_STREAM_RECHECK": str(RECHECK)})

HELD = {"type": "echo", "args": {"text": "held"}, "hold": True}  # never ends by itself
Opener = Callable[[httpx.Client, Server], Any]


def held_job(server: Server) -> int:
    job_id: int = server.submit("echo", args={"text": "held"}, hold=True)["id"]
    return job_id


@contextmanager
def opened(http: httpx.Client, method: str, path: str, **options: Any) -> Iterator[Iterator[str]]:
    """The lines of a stream, read with a short read timeout."""
    timeout = httpx.Timeout(10, read=RECHECK + MARGIN + 3)
    with http.stream(method, path, timeout=timeout, **options) as response:
        assert response.status_code in (200, 201), response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield response.iter_lines()


def global_stream(http: httpx.Client, server: Server) -> Any:
    return opened(http, "GET", "/api/v1/events?from=now")


def job_stream(http: httpx.Client, server: Server) -> Any:
    return opened(http, "GET", f"/api/v1/jobs/{held_job(server)}/events")


def log_stream(http: httpx.Client, server: Server) -> Any:
    return opened(http, "GET", f"/api/v1/jobs/{held_job(server)}/logs?follow=true")


def followed_submit(http: httpx.Client, server: Server) -> Any:
    return opened(http, "POST", "/api/v1/jobs", json={**HELD, "follow": True})


STREAMS = [global_stream, job_stream, log_stream, followed_submit]


def denied_after(lines: Iterator[str], change: Callable[[], None], server: Server) -> Sse:
    """Make ``change``, submit a job the stream may show, and read to its ``denied`` end."""
    change()
    changed = time.monotonic()
    server.submit("echo", args={"text": "after the change"})
    events = list(read_sse(lines, stop=lambda e: e.event == "denied"))
    took = time.monotonic() - changed
    assert events, "the stream ended without a word"
    assert events[-1].event == "denied", events
    assert took < RECHECK + MARGIN, f"the stream went on {took:.1f} s after the change"
    assert next(lines, None) is None  # and the response ended there
    return events[-1]


@pytest.mark.parametrize("open_stream", STREAMS, ids=lambda f: f.__name__)
def test_a_revoked_tokens_streams_end(server: Server, open_stream: Opener) -> None:
    name = unique("operator")
    add_user(server, name, "operator")
    with client(server, (name, PASSWORD)) as owner:
        made = new_token(owner)
    with bearer(server, made["token"]) as http, open_stream(http, server) as lines:

        def revoke() -> None:
            assert server.client.delete(f"/api/v1/tokens/{made['id']}").status_code == 200

        denied = denied_after(lines, revoke, server)
    assert denied.id is None
    assert denied.data["status"] == 401
    assert "revoked" in denied.data["detail"]


def test_a_removed_users_password_stream_ends(server: Server) -> None:
    name = unique("viewer")
    add_user(server, name, "viewer")
    with client(server, (name, PASSWORD)) as http, global_stream(http, server) as lines:

        def remove() -> None:
            assert server.client.delete(f"/api/v1/users/{name}").status_code == 204

        denied = denied_after(lines, remove, server)
    assert denied.data["status"] == 401


def test_a_changed_password_ends_the_old_ones_stream(server: Server) -> None:
    name = unique("viewer")
    add_user(server, name, "viewer")
    with client(server, (name, PASSWORD)) as http, global_stream(http, server) as lines:

        def change() -> None:
            answer = server.client.patch(f"/api/v1/users/{name}", json={"password": "x" * 12})
            assert answer.status_code == 200, answer.text

        assert denied_after(lines, change, server).data["status"] == 401


def test_a_password_its_user_changed_ends_its_stream(server: Server) -> None:
    name = unique("viewer")
    add_user(server, name, "viewer")
    with client(server, (name, PASSWORD)) as owner:
        made = new_token(owner)
    with client(server, (name, PASSWORD)) as http, global_stream(http, server) as lines:

        def change() -> None:
            body = {"current_password": PASSWORD, "new_password": "y" * 12}
            with bearer(server, made["token"]) as script:
                answer = script.post("/api/v1/me/password", json=body)
            assert answer.status_code == 204, answer.text

        assert denied_after(lines, change, server).data["status"] == 401


def test_a_sessions_stream_ends_at_logout(server: Server) -> None:
    name = unique("viewer")
    add_user(server, name, "viewer")
    cookie, _ = login(server, name)
    with session(server, cookie) as browser, global_stream(browser, server) as lines:

        def logout() -> None:
            with session(server, cookie) as other_tab:
                assert other_tab.post("/logout").status_code == 303

        denied = denied_after(lines, logout, server)
    assert "ended" in denied.data["detail"]


def test_a_stream_whose_credentials_hold_goes_on(server: Server) -> None:
    """Checked again several times over, it still delivers what comes next."""
    name = unique("viewer")
    add_user(server, name, "viewer")
    with client(server, (name, PASSWORD)) as http, global_stream(http, server) as lines:
        started = time.monotonic()
        pings = 0
        while pings < 3 or time.monotonic() - started < 4 * RECHECK:
            line = next(lines)
            pings += line == ": ping"
        job = server.submit("echo", args={"text": "still here"})
        event = next(read_sse(lines, stop=lambda e: e.data.get("job_id") == job["id"]))
        assert event.event != "denied"


def test_the_client_raises_instead_of_reconnecting(server: Server) -> None:
    name = unique("viewer")
    add_user(server, name, "viewer")
    with client(server, (name, PASSWORD)) as owner:
        made = new_token(owner)
    job_id = held_job(server)
    before = server.subscribers()
    revoked: list[float] = []
    failed: list[BaseException] = []

    def revoke_once_streaming() -> None:
        try:
            wait_for(lambda: server.subscribers() > before, timeout=30, what="the stream")
            assert server.client.delete(f"/api/v1/tokens/{made['id']}").status_code == 200
            revoked.append(time.monotonic())
        except BaseException as exc:  # said by the test, not lost in this thread
            failed.append(exc)

    revoker = threading.Thread(target=revoke_once_streaming)
    revoker.start()
    try:
        with Client(server.url, token=made["token"]) as mine, pytest.raises(Unauthorized) as err:
            mine.wait(job_id, timeout=RECHECK + MARGIN + 10)  # held: it never ends by itself
    finally:
        revoker.join()
    if failed:
        raise failed[0]
    assert "revoked" in str(err.value)
    assert time.monotonic() - revoked[0] < RECHECK + MARGIN
