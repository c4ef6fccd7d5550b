"""/api/v1/queues: what waits and runs in each queue; pause and resume dispatch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from jobyard.api.resources import get_node
from jobyard.errors import NotFound
from jobyard.limits import Scope
from jobyard.node import Node

router = APIRouter(prefix="/api/v1/queues", tags=["queues"])
NodeDep = Annotated[Node, Depends(get_node)]


class QueueOut(BaseModel):
    name: str
    paused: bool = Field(description="paused: running jobs go on, nothing new starts")
    max_running: int | None = Field(
        description="at most this many running or paused jobs at once, cluster-wide"
    )
    jobs: dict[str, int] = Field(description="how many jobs are in each state")


class QueueList(BaseModel):
    items: list[QueueOut]
    total: int


def _queues(node: Node) -> dict[str, QueueOut]:
    paused = node.store.queue.paused_queues()
    counts = node.store.queue.queue_counts()
    # The stored limits are the ones the claims enforce (written from the configuration).
    limits = {
        name: n for (scope, name), n in node.store.limits.read().items() if scope is Scope.QUEUE
    }
    names = sorted({*node.config.queues, *counts, *paused, *limits})
    return {
        name: QueueOut(
            name=name,
            paused=name in paused,
            max_running=limits.get(name),
            jobs=counts.get(name, {}),
        )
        for name in names
    }


@router.get("", response_model=QueueList)
def list_queues(node: NodeDep) -> QueueList:
    items = list(_queues(node).values())
    return QueueList(items=items, total=len(items))


def _set_paused(node: Node, name: str, paused: bool) -> QueueOut:
    if name not in _queues(node):
        raise NotFound(f"no queue named {name!r}")
    node.set_queue_paused(name, paused)
    return _queues(node)[name]


@router.post("/{name}/pause", response_model=QueueOut)
def pause_queue(name: str, node: NodeDep) -> QueueOut:
    """Stop dispatching the queue's jobs; running jobs go on."""
    return _set_paused(node, name, True)


@router.post("/{name}/resume", response_model=QueueOut)
def resume_queue(name: str, node: NodeDep) -> QueueOut:
    """Dispatch the queue's jobs again."""
    return _set_paused(node, name, False)
