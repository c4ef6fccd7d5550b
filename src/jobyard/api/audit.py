"""/api/v1/audit (admins): who changed what, when and from where."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from jobyard.access import AuditEntry, AuditQuery
from jobyard.access.records import OUTCOMES
from jobyard.api.resources import choices, get_node, split_names
from jobyard.api.schemas import UtcTime
from jobyard.node import Node

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    via: str
    action: str
    target: str
    outcome: str
    address: str
    detail: dict[str, Any] | None

    @classmethod
    def of(cls, entry: AuditEntry) -> Self:
        assert entry.id is not None
        return cls(
            id=entry.id,
            at=entry.at,
            actor=entry.actor,
            via=entry.via,
            action=entry.action,
            target=entry.target,
            outcome=entry.outcome,
            address=entry.address,
            detail=entry.detail,
        )


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int
    page: int
    per_page: int


@router.get("", response_model=AuditPage)
def list_audit(
    node: Annotated[Node, Depends(get_node)],
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
    actor: Annotated[list[str], Query(description="user names")] = [],  # noqa: B006
    action: Annotated[list[str], Query(description="e.g. submit, kill_job, login")] = [],  # noqa: B006
    outcome: Annotated[list[str], Query(description="ok, denied or failed")] = [],  # noqa: B006
    since: UtcTime | None = None,
    until: UtcTime | None = None,
    search: Annotated[str | None, Query(max_length=200, description="in the target")] = None,
) -> AuditPage:
    """The audit log, newest first, filtered and paged."""
    query = AuditQuery(
        page=page,
        per_page=per_page,
        actors=split_names(actor),
        actions=split_names(action),
        outcomes=choices("outcome", outcome, OUTCOMES),
        since=since,
        until=until,
        search=search or None,
    )
    entries, total = node.audit.find(query)
    return AuditPage(
        items=[AuditOut.of(e) for e in entries], total=total, page=page, per_page=per_page
    )
