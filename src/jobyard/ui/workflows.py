"""Workflows drawn as graphs (``/workflows/{name}``) and their runs, live (``/runs/{id}``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from jobyard.api.resources import get_node
from jobyard.errors import NotFound
from jobyard.models import RunState
from jobyard.node import Node
from jobyard.ui import listing
from jobyard.ui.drawing import drawing_of
from jobyard.ui.render import missing, page, path_id, stream_start
from jobyard.ui.viewer import Looker
from jobyard.workflows.runs import RETRIED

router = APIRouter(include_in_schema=False)
NodeDep = Annotated[Node, Depends(get_node)]
RUNS = 20


@router.get("/workflows", response_class=HTMLResponse)
def workflow_list(request: Request, looker: Looker, node: NodeDep) -> HTMLResponse:
    recent, _ = node.store.runs.list_runs(1, RUNS)
    workflows = sorted(node.runs.workflows.items())
    return page(request, looker, "workflows.html", workflows=workflows, runs=recent)


@router.get("/workflows/{name}", response_class=HTMLResponse)
def workflow_page(request: Request, name: str, looker: Looker, node: NodeDep) -> HTMLResponse:
    try:
        spec = node.runs.workflow(name)
    except NotFound:
        return missing(request, looker, f"There is no workflow {name!r}.")
    current = listing.number(request.query_params.get("page"))
    runs, total = node.store.runs.list_runs(current, RUNS, name)
    return page(
        request,
        looker,
        "workflow.html",
        spec=spec,
        drawing=drawing_of(spec),
        runs=runs,
        total=total,
        number=current,
        pages=max((total + RUNS - 1) // RUNS, 1),
        link=lambda n: f"/workflows/{name}?page={n}",
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, looker: Looker, node: NodeDep) -> HTMLResponse:
    after = stream_start(request)  # before the states: no change falls between
    number = path_id(run_id)
    try:
        if number is None:
            raise NotFound(f"no workflow run {run_id!r}")
        run, jobs = node.runs.get(number)
        spec = node.runs.workflow(run.workflow)
    except NotFound:
        return missing(request, looker, f"There is no workflow run {run_id} (or its workflow).")
    failed = any(job.state in RETRIED for job in jobs.values())  # what retry restarts
    return page(
        request,
        looker,
        "run.html",
        part="run_live.html",
        events_after=after,
        run=run,
        jobs=jobs,
        spec=spec,
        drawing=drawing_of(spec),
        running=run.state is RunState.RUNNING,
        stopped=run.state is RunState.STOPPED,
        retry=failed and run.state is RunState.FAILED,  # a stopped run is resumed
    )
