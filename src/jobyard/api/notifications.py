"""/api/v1/notifications: the outbox (what someone is told, through which channel, how it went)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from jobyard.api.params import JobFilter, Page, PerPage, RunFilter
from jobyard.api.resources import choices, get_node
from jobyard.node import Node
from jobyard.notify.channels import EVENTS
from jobyard.store.notes import FAILED, PENDING, RECORDED, SENT

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


class NotificationOut(BaseModel):
    id: int
    event: str
    job_id: int | None
    run_id: int | None
    channel: str | None
    recipients: list[str]
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime | None
    data: dict[str, Any]


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    total: int
    page: int
    per_page: int


@router.get("", response_model=NotificationPage)
def list_notifications(
    node: Annotated[Node, Depends(get_node)],
    page: Page = 1,
    per_page: PerPage = 50,
    status: Annotated[list[str], Query()] = [],  # noqa: B006
    event: Annotated[list[str], Query()] = [],  # noqa: B006
    job: JobFilter = None,
    run: RunFilter = None,
) -> NotificationPage:
    """Newest first; ``status`` and ``event`` take several values, repeated or comma
    separated. ``pending`` messages wait for their next try, ``sent`` ones were
    accepted by their channel, ``failed`` ones ran out of tries (``last_error`` says why),
    ``recorded`` ones matched no rule. ``data`` is what the message was made from."""
    statuses = choices("status", status, (PENDING, SENT, FAILED, RECORDED))
    events = choices("event", event, EVENTS)
    items, total = node.store.monitor.notifications(
        page, per_page, status=statuses, event=events, job_id=job, run_id=run
    )
    return NotificationPage(
        items=[NotificationOut(**item) for item in items], total=total, page=page, per_page=per_page
    )


@router.get("/channels")
def list_channels(node: Annotated[Node, Depends(get_node)]) -> dict[str, Any]:
    """The configured channels and rules, without secrets."""
    return node.config.notifications.public_dict()
