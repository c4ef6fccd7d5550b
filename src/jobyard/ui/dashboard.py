"""The dashboard (``/``) and the queues page: counts, queues, running jobs, failures, workers."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from jobyard.api.queues import list_queues
from jobyard.api.resources import get_node
from jobyard.clock import utcnow
from jobyard.models import JobQuery
from jobyard.node import Node
from jobyard.roster import WorkerState
from jobyard.states import JobState
from jobyard.ui.render import page
from jobyard.ui.viewer import Looker

router = APIRouter(include_in_schema=False)
NodeDep = Annotated[Node, Depends(get_node)]
RUNNING = 20  # running jobs shown; the rest are a click away
FAILURES = 8


def overview(node: Node) -> dict[str, Any]:
    """What the dashboard shows, in a few paged queries (none reads every job)."""
    queues = list_queues(node).items
    totals: Counter[str] = Counter()
    for queue in queues:
        totals.update(queue.jobs)
    manager = node.manager
    running, running_total = manager.find(
        JobQuery(states=(JobState.RUNNING, JobState.PAUSED), per_page=RUNNING, sort=["started_at"])
    )
    failed, failed_total = manager.find(
        JobQuery(states=(JobState.FAILED,), per_page=FAILURES, sort=["-created_at"])
    )
    # A breach is a notification per channel that takes it: each (job, budget) once.
    notes, _ = node.store.monitor.notifications(1, 4 * FAILURES, event=["sla_breach"])
    breaches = list({_breach(note): note for note in reversed(notes)}.values())[::-1][:FAILURES]
    workers = node.roster.all()
    return {
        "states": [(state.value, totals.get(state.value, 0)) for state in JobState],
        "queues": queues,
        "running": running,
        "running_total": running_total,
        "failed": failed,
        "failed_total": failed_total,
        "breaches": breaches,
        "workers": workers,
        "alive": sum(view.state is not WorkerState.LOST for view in workers),
        "now": utcnow(),
    }


def _breach(note: dict[str, Any]) -> tuple[Any, Any]:
    """The job and budget an ``sla_breach`` notification tells of."""
    return note.get("job_id"), ((note.get("data") or {}).get("sla") or {}).get("budget")


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, looker: Looker, node: NodeDep) -> HTMLResponse:
    return page(request, looker, "dashboard.html", part="dashboard_panels.html", **overview(node))


@router.get("/queues", response_class=HTMLResponse)
def queues(request: Request, looker: Looker, node: NodeDep) -> HTMLResponse:
    items = list_queues(node).items
    return page(request, looker, "queues.html", part="queues_table.html", queues=items)
