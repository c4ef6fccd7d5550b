"""Request metrics of this API process, for Prometheus.

``jobyard_http_requests_total`` counts answered requests by method, route template
and status; ``jobyard_http_request_duration_seconds`` is the time to the response's
first byte, so an event stream that stays open for an hour counts as the moment it
started. Route templates (``/api/v1/jobs/{job_id}``) keep the label sets small;
a path that matched no route is ``unmatched``. Unlike the cluster's numbers these
are process-local: sum them over the API nodes.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
# any other method is counted as _OTHER: a client must not grow the label sets
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# seconds to the first byte: most answers take milliseconds; a claim-heavy list, more
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class RequestMetrics:
    """The two request metrics, registered in ``registry`` (the node's /metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["method", "route"]
        self.requests = Counter(
            "jobyard_http_requests",
            "HTTP requests answered by this API process",
            [*labels, "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "jobyard_http_request_duration_seconds",
            "Time to the first byte of the response (streams: until they start)",
            labels,
            buckets=BOUNDS,
            registry=registry,
        )

        # labels() costs a few microseconds (a lock, a key built of strings); the label
        # sets are few (route templates by methods by statuses), so their children are kept
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.duration.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class ObserveRequests:
    """Pure ASGI middleware: counts and times every HTTP request (none is sampled out)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in METHODS else "_OTHER"
        started = time.perf_counter()
        answer: dict[str, Any] = {"status": 500, "seconds": None}

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["seconds"] = time.perf_counter() - started
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            route = _route(scope)
            seconds = answer["seconds"] or time.perf_counter() - started
            self.metrics.observe(method, route or UNMATCHED, answer["status"], seconds)


def _route(scope: Scope) -> str | None:
    """The template of the route that answered, as the router left it in the scope."""
    route = scope.get("route")
    path = getattr(route, "path_format", None)  # its template without convertors
    return path if isinstance(path, str) else None
