"""The security headers keep a route's own choice; the body deadline runs from the first read.

tests/integration/test_shedding.py drips a body into the real server for the 408;
these drive the middlewares directly, with a clock the test controls no more than
anyio's own (a deadline of a fraction of a second).
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Message

from jobyard.api.headers import PAGES, SecurityHeaders
from jobyard.api.problems import BodyLimit
from tests.asgi import scope


def call(app: ASGIApp, method: str, path: str, receive: Any = None) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def whole() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def run() -> None:
        with anyio.fail_after(10):
            await app(scope(method, path), receive or whole, send)

    asyncio.run(run())
    return sent


def headers_of(sent: list[Message]) -> dict[str, str]:
    start = next(message for message in sent if message["type"] == "http.response.start")
    return {name.decode().lower(): value.decode() for name, value in start["headers"]}


def test_a_routes_own_framing_and_policy_are_kept() -> None:
    app = FastAPI()

    @app.get("/embeddable")
    def embeddable() -> Response:
        return Response(
            "<p>hi</p>",
            media_type="text/html",
            headers={"X-Frame-Options": "SAMEORIGIN", "Content-Security-Policy": "default-src *"},
        )

    @app.get("/page")
    def page() -> Response:
        return Response("<p>hi</p>", media_type="text/html")

    kept = headers_of(call(SecurityHeaders(app), "GET", "/embeddable"))
    assert kept["x-frame-options"] == "SAMEORIGIN"
    assert kept["content-security-policy"] == "default-src *"
    assert kept["x-content-type-options"] == "nosniff"
    added = headers_of(call(SecurityHeaders(app), "GET", "/page"))
    assert added["x-frame-options"] == "DENY"
    assert added["content-security-policy"] == PAGES


def test_the_body_deadline_runs_from_the_first_read_not_the_request_start() -> None:
    """A route that reads its body late (after a slow check, say) is not refused for the
    time it took: only a body that does not come within the deadline of being asked for."""
    app = FastAPI()

    @app.post("/late")
    async def late(request: Request) -> dict[str, int]:
        await anyio.sleep(0.6)  # longer than the deadline, before the first read
        return {"size": len(await request.body())}

    chunks = [b"ab", b"cd"]

    async def arrives() -> Message:
        await anyio.sleep(0.05)
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    sent = call(BodyLimit(app, limit=1024, deadline=0.3), "POST", "/late", arrives)
    assert sent[0]["status"] == 200
    assert b"".join(message.get("body", b"") for message in sent[1:]) == b'{"size":4}'


def test_a_body_that_stops_coming_is_refused_once_the_deadline_passes() -> None:
    app = FastAPI()

    @app.post("/read")
    async def read(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    first = True

    async def drips() -> Message:
        nonlocal first
        if not first:
            await anyio.sleep_forever()
        first = False
        return {"type": "http.request", "body": b"a", "more_body": True}

    sent = call(BodyLimit(app, limit=1024, deadline=0.2), "POST", "/read", drips)
    assert sent[0]["status"] == 408
    assert b"did not arrive within 0.2 s" in b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("declared", [b"2048", b"1025"])
def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(declared: bytes) -> None:
    app = FastAPI()

    @app.post("/read")
    async def read(request: Request) -> dict[str, int]:
        raise AssertionError("the route ran")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def never() -> Message:
        raise AssertionError("the body was read")

    async def run() -> None:
        limited = BodyLimit(app, limit=1024, deadline=1)
        await limited(scope("POST", "/read", [(b"content-length", declared)]), never, send)

    asyncio.run(run())
    assert sent[0]["status"] == 413
