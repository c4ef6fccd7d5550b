"""The job list (``/jobs``), one job's page (``/jobs/{id}``) and its full log as text."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from jobyard.api.inputs import reads_own_query
from jobyard.api.queues import list_queues
from jobyard.api.resources import get_node
from jobyard.clock import utcnow
from jobyard.errors import NotFound
from jobyard.node import Node
from jobyard.ui import detail
from jobyard.ui.listing import PER_PAGE, STATES, JobFilter
from jobyard.ui.render import blank_fields, missing, page, path_id, stream_start
from jobyard.ui.viewer import Looker

router = APIRouter(include_in_schema=False)
NodeDep = Annotated[Node, Depends(get_node)]
SORTS = {
    "-created_at": "newest first",
    "created_at": "oldest first",
    "-started_at": "started last",
    "-finished_at": "ended last",
    "-priority": "priority",
    "type": "type",
    "state": "state",
}


@router.get("/jobs", response_class=HTMLResponse)
@reads_own_query  # JobFilter.of: a value no database stores is ignored, and said
def job_list(request: Request, looker: Looker, node: NodeDep) -> Response:
    now = utcnow()
    wanted = JobFilter.of(request.query_params, now)
    if blank_fields(request) and not wanted.problems:
        return RedirectResponse(wanted.link(page=wanted.page), status_code=303)
    found, total = node.manager.find(wanted.query())
    return page(
        request,
        looker,
        "jobs.html",
        part="jobs_table.html",
        jobs=found,
        total=total,
        pages=max((total + wanted.per_page - 1) // wanted.per_page, 1),
        filter=wanted,
        states=STATES,
        types=[t.name for t in node.catalog.all()],
        queues=[q.name for q in list_queues(node).items],
        workers=[view.info.name for view in node.roster.all()],
        sorts=SORTS,
        per_pages=PER_PAGE,
        now=now,
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, looker: Looker, node: NodeDep) -> HTMLResponse:
    # Where the job's own stream starts: read before the log, so no line falls between.
    after = stream_start(request)
    try:
        job = node.manager.get(_id(job_id))
    except NotFound:
        return missing(request, looker, f"There is no job {job_id}: it may have been removed.")
    events = detail.timeline(node, job.id)
    live_only = bool(request.headers.get("HX-Request"))
    return page(
        request,
        looker,
        "job.html",
        part="job_live.html",
        job=job,
        job_after=after,
        events=events,
        breaches=detail.breaches(events),
        budgets=detail.budgets(job),
        buttons=detail.buttons(job) if looker.operates else [],
        depends_on=node.manager.dependencies(job.id),
        lines=[] if live_only else detail.log_tail(node, job),
        now=utcnow(),
    )


@router.get("/jobs/{job_id}/log.txt")
def job_log(request: Request, job_id: str, looker: Looker, node: NodeDep) -> Response:
    """The whole log as text (stderr and system lines marked), read a page at a time."""
    try:
        job = node.manager.get(_id(job_id))
    except NotFound:
        return missing(request, looker, f"There is no job {job_id}: it may have been removed.")
    headers = {"Content-Disposition": f'attachment; filename="job-{job.id}.log"'}
    return StreamingResponse(
        detail.full_log(node, job.id), media_type="text/plain", headers=headers
    )


def _id(text: str) -> int:
    if (job_id := path_id(text)) is None:
        raise NotFound(f"no job {text!r}")
    return job_id
