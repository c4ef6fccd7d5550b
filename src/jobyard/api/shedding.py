"""Load shedding: past its limits the server answers 503 at once instead of slowing everyone.

An ASGI middleware counts the requests being handled and the open event streams
(``text/event-stream`` asked for, or a path ending in ``/events``). A request
over ``max_requests``, or a stream over ``max_streams``, gets a 503 problem
(RFC 9457) with ``Retry-After`` before the app sees it, so the requests already
admitted keep their speed and the process keeps its memory. ``/healthz`` is
never counted nor refused: a load balancer must see the process alive.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobyard.api.problems import problem

NEVER_SHED = frozenset({"/healthz"})
TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})  # a true boolean, to pydantic


@dataclass
class Shed:
    """What the middleware refused, by kind (``requests`` or ``streams``), for /metrics;
    and what it holds now, against its limits (set by the middleware)."""

    counts: dict[str, int] = field(default_factory=lambda: {"requests": 0, "streams": 0})
    busy: dict[str, int] = field(default_factory=lambda: {"requests": 0, "streams": 0})
    limits: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def full(self, kind: str) -> bool:
        """Whether a new ``kind`` would be refused now. Read from a route's thread: a
        moment late at worst, as any count of what comes and goes."""
        return kind in self.limits and self.busy[kind] >= self.limits[kind]

    def detail(self, kind: str) -> str:
        return f"the server is at its limit of {self.limits[kind]} {kind}; try again shortly"

    def add(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


class LoadShedding:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_requests: int,
        max_streams: int,
        shed: Shed,
        retry_after: int = 1,
    ) -> None:
        self.app = app
        shed.limits.update(requests=max_requests, streams=max_streams)
        self.limits = shed.limits
        self.busy = shed.busy
        self.shed = shed
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in NEVER_SHED:
            await self.app(scope, receive, send)
            return
        kind = "streams" if _is_stream(scope) else "requests"
        if self.busy[kind] >= self.limits[kind]:  # one event loop: no lock needed
            self.shed.add(kind)
            await self._refuse(kind, scope, receive, send)
            return
        self.busy[kind] += 1
        counted = kind

        async def recount(message: Message) -> None:
            # A stream asked for in the body (a submit's ``"follow": true``) is known when
            # it starts: it holds a stream's place from then on, not a request's. (Its
            # route refused it before storing the job when no place was free.)
            nonlocal counted
            starts = counted == "requests" and message["type"] == "http.response.start"
            if starts and _streams(message):
                self.busy["requests"] -= 1
                self.busy["streams"] += 1
                counted = "streams"
            await send(message)

        try:
            await self.app(scope, receive, recount)
        finally:
            self.busy[counted] -= 1

    async def _refuse(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(503, self.shed.detail(kind))
        response.headers["Retry-After"] = str(self.retry_after)
        await response(scope, receive, send)


def _is_stream(scope: Scope) -> bool:
    """Whether the request asks for a stream of events (it may last for hours): as the
    routes decide, by its path, its ``follow`` parameter (read as a boolean is) or its
    ``Accept``."""
    if scope["path"].endswith("/events"):
        return True
    query = scope.get("query_string", b"").decode("latin-1")
    if any(k == "follow" and v.lower() in TRUE for k, v in parse_qsl(query)):
        return True
    return asks_stream(scope)


def asks_stream(scope: Scope) -> bool:
    """Whether the request's ``Accept`` asks for an event stream."""
    return b"text/event-stream" in dict(scope["headers"]).get(b"accept", b"")


def _streams(start: Message) -> bool:
    """Whether an answer's start says it is an event stream."""
    for name, value in start.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value).startswith(b"text/event-stream")
    return False
