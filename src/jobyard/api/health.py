"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Request, Response

from jobyard import __version__, metrics
from jobyard.api.problems import try_again
from jobyard.api.resources import get_node
from jobyard.node import Node

READY_WITHIN = 5.0  # seconds /readyz waits for the database's answer
router = APIRouter(tags=["health"])
# Apart from /healthz: it needs a viewer, unless the configuration says `metrics_public`.
metrics_router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(node: Annotated[Node, Depends(get_node)]) -> dict[str, Any]:
    """200 while the process serves; says which parts run in it.

    ``status`` is ``degraded`` (still 200) when a part this node was started
    with no longer works, and ``reasons`` says which: today, an embedded worker
    that drained or stopped, leaving the node without one (``worker`` is then
    null). A restart of the node brings it back.
    """
    reasons = _degraded(node)
    worker = node.worker
    return {
        "status": "degraded" if reasons else "ok",
        "reasons": reasons,
        "version": __version__,
        "worker": worker.name if worker is not None and worker.claiming else None,
        "scheduler": node.scheduler is not None,
        "scheduler_leader": node.scheduler is not None and node.scheduler.leads,
        "database": node.store.dialect,
        "stream_subscribers": node.hub.subscribers,
    }


@router.get(
    "/readyz",
    responses={503: {"description": "the database does not answer (problem details)"}},
)
def readyz(request: Request, node: Annotated[Node, Depends(get_node)]) -> Any:
    """200 when this node can serve requests: its database answers, within 5 s. 503
    (problem details) while it does not, so that a load balancer or an orchestrator
    sends requests elsewhere; ``/healthz`` stays 200 meanwhile (the process is alive)."""
    try:
        node.ping.answers(within=READY_WITHIN)
    except TimeoutError:
        return try_again(request, f"the database did not answer within {READY_WITHIN:g} s")
    return {"status": "ready", "database": node.store.dialect}


def _degraded(node: Node) -> list[str]:
    worker = node.worker
    if worker is None or worker.claiming:
        return []
    if worker.forgotten:
        return [f"the worker of this node stopped claiming jobs: {worker.forgotten}"]
    return [f"the worker {worker.name} of this node stopped claiming jobs (drained or stopped)"]


@metrics_router.get(
    "/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}}
)
async def prometheus_metrics(node: Annotated[Node, Depends(get_node)]) -> Response:
    """Prometheus text format: jobs by state and type, queue depth, run time and dispatch
    latency histograms, live workers, notifications sent/failed/pending, SLA breaches.
    The numbers are the whole cluster's, read from the database."""
    body = await to_thread.run_sync(metrics.render, node.metrics)
    return Response(body, media_type=metrics.CONTENT_TYPE)
