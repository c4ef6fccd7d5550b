"""Liveness."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from jobyard import __version__
from jobyard.api.deps import get_node
from jobyard.node import Node

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(node: Annotated[Node, Depends(get_node)]) -> dict[str, Any]:
    """200 while the process serves; says which parts run in it."""
    return {
        "status": "ok",
        "version": __version__,
        "worker": node.worker.name if node.worker else None,
        "scheduler": node.scheduler is not None,
        "scheduler_leader": node.scheduler is not None and node.scheduler.leading,
        "database": node.store.dialect,
        "stream_subscribers": node.hub.subscribers,
    }
