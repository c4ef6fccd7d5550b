"""HEAD wherever GET is: every ``HEAD`` answered as the ``GET`` of the same URL, without a body.

A FastAPI route answers the methods it declares and no other: not ``HEAD``, which
RFC 9110 §9.3.2 asks a server to answer wherever it answers ``GET``.
:class:`HeadAsGet` does it for every route at once, pages and static files included.
"""

from __future__ import annotations

from anyio import CancelScope
from anyio.lowlevel import checkpoint
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
