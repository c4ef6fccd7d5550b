"""/api/v1/workers: the registered workers, what they run, and draining one remotely."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Response, status
from pydantic import BaseModel, ConfigDict, Field

from jobyard.api.resources import get_node
from jobyard.durations import Duration
from jobyard.errors import Conflict
from jobyard.node import Node
from jobyard.roster import Roster, WorkerState, WorkerView

router = APIRouter(prefix="/api/v1/workers", tags=["workers"])


async def get_roster(node: Annotated[Node, Depends(get_node)]) -> Roster:
    return node.roster


RosterDep = Annotated[Roster, Depends(get_roster)]
NodeDep = Annotated[Node, Depends(get_node)]


class WorkerOut(BaseModel):
    name: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    state: WorkerState = Field(
        description="running; draining (claims nothing new); lost (no heartbeat within "
        "its lease timeout)"
    )
    queues: list[str] = Field(description='the queues it serves; ["*"]: every queue')
    tags: list[str] = Field(description="it runs jobs whose required tags are among these")
    concurrency: int
    running: list[int] = Field(description="ids of its running and paused jobs")
    drain_requested_at: datetime | None
    lease_timeout: float

    @classmethod
    def of(cls, view: WorkerView) -> WorkerOut:
        info = view.info
        return cls(
            name=info.name,
            host=info.host,
            pid=info.pid,
            version=info.version,
            started_at=info.started_at,
            heartbeat_at=info.heartbeat_at,
            state=view.state,
            queues=info.queues,
            tags=info.tags,
            concurrency=info.concurrency,
            running=view.running,
            drain_requested_at=info.drain_requested_at,
            lease_timeout=info.lease_timeout,
        )


class WorkerList(BaseModel):
    items: list[WorkerOut]
    total: int


class DrainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout: Duration | None = Field(
        default=None,
        description="how long running jobs may go on before they are handed back "
        "(e.g. 60s; default: the worker's --drain-timeout)",
    )


@router.get("", response_model=WorkerList)
def list_workers(roster: RosterDep) -> WorkerList:
    items = [WorkerOut.of(view) for view in roster.all()]
    return WorkerList(items=items, total=len(items))


@router.get("/{name}", response_model=WorkerOut)
def get_worker(name: str, roster: RosterDep) -> WorkerOut:
    return WorkerOut.of(roster.get(name))


@router.post("/{name}/drain", response_model=WorkerOut, status_code=status.HTTP_202_ACCEPTED)
def drain_worker(
    name: str, roster: RosterDep, node: NodeDep, body: Annotated[DrainIn | None, Body()] = None
) -> WorkerOut:
    """Ask the worker to stop claiming, let its jobs finish, then hand back the rest.

    The worker carries it out at its next heartbeat (at once on PostgreSQL) and
    then stops; a ``jobyard worker`` process exits 0. The worker embedded in the
    server that answers is not drained (409): the server would go on without one.
    """
    if node.worker is not None and node.worker.name == name:
        state = roster.get(name).state.value
        raise Conflict(
            f"worker {name!r} is embedded in this server, which would run no jobs without "
            "it; stop the server (SIGTERM drains it) or run workers apart "
            "(jobyard serve --no-worker)",
            state=state,
        )
    timeout = body.timeout if body is not None else None
    return WorkerOut.of(roster.drain(name, timeout))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def forget_worker(name: str, roster: RosterDep) -> Response:
    """Remove a ``lost`` worker from the list (409 for a live one: drain it instead)."""
    roster.forget(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
