"""The methods a path answers: HEAD wherever GET is, and all of them in a 405's ``Allow``.

A FastAPI route answers the methods it declares and no other: not ``HEAD``, which
RFC 9110 §9.3.2 asks a server to answer wherever it answers ``GET``; and the
router's 405 names in ``Allow`` the methods of the first route on the path, not
of them all. :class:`HeadAsGet` answers every ``HEAD`` as the ``GET`` of the
same URL; :func:`allowed` gathers the methods of every route on a path, for the
405 problem (:mod:`jobyard.api.problems`).
"""

from __future__ import annotations

from collections.abc import Iterable

from anyio import CancelScope
from anyio.lowlevel import checkpoint
from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

END: Message = {"type": "http.response.body", "body": b"", "more_body": False}


class HeadAsGet:
    """Pure ASGI middleware: a ``HEAD`` is served as a ``GET``, and ends with its headers.

    The app sees a ``GET``, so its route, credentials (401 without) and problems
    are the ``GET``'s; the ``GET``'s status and headers go out (its
    ``Content-Length`` included), then an empty body, and the app is stopped
    there: its body is not sent, and an event stream is never started (no
    subscription, nothing to wait for). Other requests pass through untouched.
    The OpenAPI document lists the ``GET`` operations only.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        with CancelScope() as answered:

            async def headers_only(message: Message) -> None:
                if message["type"] != "http.response.start":
                    return
                await send(message)
                await send(END)
                answered.cancel()
                await checkpoint()  # raises here: the app goes no further than its headers

            # A copy: the server's scope stays a HEAD's, whose answer has no body.
            await self.app({**scope, "method": "GET"}, receive, headers_only)


def allowed(request: Request, also: Iterable[str] = ()) -> list[str]:
    """Every method a route on ``request``'s path answers (and ``also``), HEAD with GET."""
    methods = set(also)
    # Each route as the app routes it: those of an included router with its prefix.
    for route in iter_route_contexts(request.app.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(route.methods or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
