"""/api/v1/workflows and /api/v1/workflow-runs: DAGs from the configuration, and their runs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from jobyard.api.params import Page, PerPage, RunId
from jobyard.api.resources import get_node
from jobyard.api.schemas import answer, location
from jobyard.models import Job, NodeJob, RunState, WorkflowRun
from jobyard.node import Node
from jobyard.states import JobState
from jobyard.workflows.dag import edges
from jobyard.workflows.runs import Runs
from jobyard.workflows.spec import WorkflowSpec

router = APIRouter(tags=["workflows"])


async def get_runs(node: Annotated[Node, Depends(get_node)]) -> Runs:
    return node.runs


RunsDep = Annotated[Runs, Depends(get_runs)]


class NodeOut(BaseModel):
    name: str
    type: str
    args: dict[str, Any]
    depends_on: list[str]
    at: str | None
    cron: str | None


class WorkflowOut(BaseModel):
    name: str
    description: str
    timezone: str
    args: dict[str, Any]
    nodes: list[NodeOut]
    edges: list[tuple[str, str]] = Field(description="(upstream, downstream) pairs")

    @classmethod
    def of(cls, spec: WorkflowSpec) -> WorkflowOut:
        nodes = [
            NodeOut(
                name=n.name,
                type=n.type,
                args=n.args,
                depends_on=list(n.depends_on),
                at=n.at.isoformat() if n.at else None,
                cron=n.cron,
            )
            for n in spec.nodes.values()
        ]
        return cls(
            name=spec.name,
            description=spec.description,
            timezone=spec.timezone,
            args=spec.args,
            nodes=nodes,
            edges=edges(spec),
        )


class WorkflowList(BaseModel):
    items: list[WorkflowOut]
    total: int


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    args: dict[str, Any] = Field(default_factory=dict, description="override workflow args")


class NodeState(BaseModel):
    job_id: int
    state: JobState
    attempt: int
    restarted_from: int | None


class RunOut(BaseModel):
    id: int
    workflow: str
    state: RunState
    args: dict[str, Any]
    trigger: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    nodes: dict[str, NodeState] = Field(default_factory=dict, description="each node's job")

    @classmethod
    def of(cls, run: WorkflowRun, jobs: Mapping[str, Job | NodeJob] | None = None) -> RunOut:
        nodes = {
            name: NodeState(
                job_id=node.job_id,
                state=node.state,
                attempt=node.attempt,
                restarted_from=node.restarted_from,
            )
            for name, job in (jobs or {}).items()
            for node in [job if isinstance(job, NodeJob) else NodeJob.of(job)]
        }
        return cls(
            id=run.id,
            workflow=run.workflow,
            state=run.state,
            args=run.args,
            trigger=run.trigger,
            created_at=run.created_at,
            updated_at=run.updated_at,
            finished_at=run.finished_at,
            nodes=nodes,
        )


class RunPage(BaseModel):
    items: list[RunOut]
    total: int
    page: int
    per_page: int


@router.get("/api/v1/workflows", response_model=WorkflowList)
def list_workflows(runs: RunsDep) -> WorkflowList:
    items = [WorkflowOut.of(spec) for _, spec in sorted(runs.workflows.items())]
    return WorkflowList(items=items, total=len(items))


@router.get("/api/v1/workflows/{name}", response_model=WorkflowOut)
def get_workflow(name: str, runs: RunsDep) -> WorkflowOut:
    return WorkflowOut.of(runs.workflow(name))


@router.post("/api/v1/workflows/{name}/runs", status_code=201, response_model=RunOut)
def start_run(name: str, runs: RunsDep, body: StartRun | None = None) -> Response:
    """Start a run: nodes without dependencies start at once, the rest when upstream succeeded."""
    args = body.args if body else None
    if args:
        runs.check_run_args(name, args)
    run = RunOut.of(*runs.start(name, args))
    # the Location names it in the audit
    return answer(run, 201, {"Location": location("/api/v1/workflow-runs", run.id)})


@router.get("/api/v1/workflow-runs", response_model=RunPage)
def list_runs(
    runs: RunsDep,
    page: Page = 1,
    per_page: PerPage = 50,
    workflow: str | None = None,
    state: RunState | None = None,
) -> Response:
    found, total = runs.store.runs.list_runs(
        page, per_page, workflow, state.value if state else None
    )
    items = [RunOut.of(run) for run in found]
    return answer(RunPage(items=items, total=total, page=page, per_page=per_page))


@router.get("/api/v1/workflow-runs/{run_id}", response_model=RunOut)
def get_run(run_id: RunId, runs: RunsDep) -> Response:
    """The run with every node's current job and state."""
    return answer(RunOut.of(*runs.view(run_id)))


@router.post("/api/v1/workflow-runs/{run_id}/stop", response_model=RunOut)
def stop_run(run_id: RunId, runs: RunsDep) -> Response:
    """Kill the running nodes and cancel the pending ones (409 unless running)."""
    return answer(RunOut.of(*runs.stop(run_id)))


@router.post("/api/v1/workflow-runs/{run_id}/resume", response_model=RunOut)
def resume_run(run_id: RunId, runs: RunsDep) -> Response:
    """Run again the nodes that a stop killed or cancelled, in order."""
    return answer(RunOut.of(*runs.resume(run_id)))


@router.post("/api/v1/workflow-runs/{run_id}/retry-failed", response_model=RunOut)
def retry_failed(run_id: RunId, runs: RunsDep) -> Response:
    """Restart every failed node; what it blocked runs when it succeeds."""
    return answer(RunOut.of(*runs.retry_failed(run_id)))
