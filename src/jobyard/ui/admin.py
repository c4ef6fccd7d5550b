"""Schedules, workers, notifications and the audit log (admins): lists with their controls."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jobyard.access import AuditQuery
from jobyard.api.resources import get_node
from jobyard.api.schedules import list_schedules
from jobyard.api.workers import WorkerOut
from jobyard.clock import utcnow
from jobyard.node import Node
from jobyard.notify.channels import EVENTS
from jobyard.store.notes import FAILED, PENDING, RECORDED, SENT
from jobyard.ui import listing
from jobyard.ui.render import blank_fields, page
from jobyard.ui.viewer import Looker

router = APIRouter(include_in_schema=False)
NodeDep = Annotated[Node, Depends(get_node)]
PER_PAGE = 50
STATUSES = (PENDING, SENT, FAILED, RECORDED)


def _address(path: str, *, page: int, **filters: str) -> str:
    """``path`` with the filters that are set, and the page unless it is the first."""
    query = urlencode(
        {k: v for k, v in (filters | {"page": page if page > 1 else ""}).items() if v}
    )
    return f"{path}?{query}" if query else path


def _pages(total: int) -> int:
    return max((total + PER_PAGE - 1) // PER_PAGE, 1)


@router.get("/schedules", response_class=HTMLResponse)
def schedules(request: Request, looker: Looker, node: NodeDep) -> HTMLResponse:
    items = list_schedules(node.schedules).items
    return page(request, looker, "schedules.html", part="schedules_table.html", schedules=items)


@router.get("/workers", response_class=HTMLResponse)
def workers(request: Request, looker: Looker, node: NodeDep) -> HTMLResponse:
    items = [WorkerOut.of(view) for view in node.roster.all()]
    own = node.worker.name if node.worker is not None else None  # not drained from here
    return page(request, looker, "workers.html", part="workers_table.html", workers=items, own=own)


@router.get("/notifications", response_class=HTMLResponse)
def notifications(request: Request, looker: Looker, node: NodeDep) -> Response:
    params = request.query_params
    status = params.get("status", "")
    event = params.get("event", "")
    number = listing.number(params.get("page"))

    def link(n: int) -> str:
        return _address("/notifications", status=status, event=event, page=n)

    if blank_fields(request):
        return RedirectResponse(link(number), status_code=303)
    items, total = node.store.monitor.notifications(
        number,
        PER_PAGE,
        status=[status] if status in STATUSES else [],
        event=[event] if event in EVENTS else [],
    )
    return page(
        request,
        looker,
        "notifications.html",
        part="notifications_table.html",
        items=items,
        total=total,
        number=number,
        pages=_pages(total),
        link=link,
        delivery=status,
        event=event,
        statuses=STATUSES,
        events=EVENTS,
    )


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, looker: Looker, node: NodeDep) -> Response:
    if not looker.admin:
        return page(request, looker, "forbidden.html", status=403, what="the audit log")
    params = request.query_params
    actor = params.get("actor", "").strip()
    search = params.get("search", "").strip()[:200]
    number = listing.number(params.get("page"))

    def link(n: int) -> str:
        return _address("/audit", actor=actor, search=search, page=n)

    if blank_fields(request):
        return RedirectResponse(link(number), status_code=303)
    query = AuditQuery(
        page=number, per_page=PER_PAGE, actors=[actor] if actor else [], search=search or None
    )
    entries, total = node.audit.find(query)
    return page(
        request,
        looker,
        "audit.html",
        entries=entries,
        total=total,
        number=number,
        pages=_pages(total),
        link=link,
        actor=actor,
        search=search,
        now=utcnow(),
    )
