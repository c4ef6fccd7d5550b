"""Workflows drawn as graphs (``/workflows/{name}``) and their runs, live (``/runs/{id}``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from jobyard.api.resources import get_node
from jobyard.errors import NotFound
from jobyard.models import Job, RunState
from jobyard.node import Node
from jobyard.ui import listing
from jobyard.ui.drawing import drawing_of, drawing_of_graph
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
        workflow_name=spec.name,
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
    except NotFound:
        return missing(request, looker, f"There is no workflow run {run_id}.")
    spec = node.runs.workflows.get(run.workflow)
    if spec is not None and set(spec.nodes) == set(jobs):
        drawing, types = drawing_of(spec), {name: n.type for name, n in spec.nodes.items()}
    else:  # the file changed since (or has the workflow no more): the run's own nodes
        drawing = drawing_of_graph(_own_graph(node, run.id, jobs))
        types = {name: job.type for name, job in jobs.items()}
    failed = any(job.state in RETRIED for job in jobs.values())  # what retry restarts
    return page(
        request,
        looker,
        "run.html",
        part="run_live.html",
        events_after=after,
        run=run,
        jobs=jobs,
        workflow_name=run.workflow,
        types=types,
        drawing=drawing,
        running=run.state is RunState.RUNNING,
        stopped=run.state is RunState.STOPPED,
        retry=failed and run.state is RunState.FAILED,  # a stopped run is resumed
    )


def _own_graph(node: Node, run_id: int, jobs: dict[str, Job]) -> dict[str, list[str]]:
    """Each node of a run and the nodes it waits for, as its jobs were stored: what the
    run is made of, whatever the file says now."""
    node_of = {job.id: job.node for job in node.store.runs.run_jobs(run_id) if job.node}
    waits = node.store.deps.dependencies([job.id for job in jobs.values()])
    return {
        name: sorted({node_of[d.upstream] for d in waits[job.id] if d.upstream in node_of})
        for name, job in jobs.items()
    }
