"""Headers every answer carries so that a browser cannot be turned against its user.

- ``X-Content-Type-Options: nosniff``: an answer is what its ``Content-Type`` says (a
  job's log, served as text, is never run as a script or a page);
- ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: no other site frames a
  page, so none can lay its own buttons over Kill and Remove (clickjacking);
- on the UI's pages, a Content Security Policy that runs only the server's own scripts:
  should an escape ever be missed, injected markup runs nothing. The API's documentation
  pages (Swagger UI, ReDoc) start with an inline script of FastAPI's: they get the
  framing rule only.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGES = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # style attributes; htmx's indicator style
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
FRAMING = "frame-ancestors 'none'"
INLINE_SCRIPTED = frozenset({"/docs", "/redoc"})


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers above to every HTTP answer's start."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", ""))  # behind a prefix
        policy = FRAMING if path in INLINE_SCRIPTED else PAGES

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", policy)
            await send(message)

        await self.app(scope, receive, send_with_headers)
