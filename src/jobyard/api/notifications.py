"""/api/v1/notifications: what someone must be told (delivery comes with channels)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from jobyard.api.deps import get_node
from jobyard.node import Node

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


class NotificationOut(BaseModel):
    id: int
    event: str
    job_id: int | None
    run_id: int | None
    status: str
    data: dict[str, Any]
    created_at: datetime


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    total: int
    page: int
    per_page: int


@router.get("", response_model=NotificationPage)
def list_notifications(
    node: Annotated[Node, Depends(get_node)],
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> NotificationPage:
    """Newest first: e.g. ``workflow_failed`` with the run and its failed nodes."""
    items, total = node.store.notifications(page, per_page)
    return NotificationPage(
        items=[NotificationOut(**item) for item in items], total=total, page=page, per_page=per_page
    )
