"""``POST /api/v1/jobs/actions``: one control action on many jobs at once.

Each id is handled on its own through the manager, exactly as its single route
would handle it (``POST /api/v1/jobs/{id}/kill``, ``…/restart``,
``DELETE /api/v1/jobs/{id}``), and gets a result with the status and job (or
problem) that route would have answered: a job that is gone (404) or whose
state forbids the action (409) does not stop the others.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from jobyard.api.problems import problem_body
from jobyard.api.resources import get_manager
from jobyard.api.schemas import JobOut, answer
from jobyard.api.trail import note_for_audit
from jobyard.clock import utcnow
from jobyard.errors import JobyardError
from jobyard.manager import JobManager
from jobyard.models import Job
from jobyard.states import Event

# Included in the jobs router: its prefix (/api/v1/jobs) and its roles apply.
router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
Manager = Annotated[JobManager, Depends(get_manager)]
JOBS = "/api/v1/jobs"
MAX_IDS = 500


class Action(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    KILL = "kill"
    RESTART = "restart"
    REMOVE = "remove"


class JobActions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Action
    ids: list[Annotated[int, Field(ge=1, strict=True)]] = Field(
        min_length=1, max_length=MAX_IDS, description="handled in this order, each once"
    )
    force: bool = Field(default=False, strict=True, description="remove: a live or pending job too")


class ActionResult(BaseModel):
    id: int
    ok: bool
    status: int = Field(description="the status the job's own route would have answered")
    job: JobOut | None = Field(
        description="the job after the action (restart: the new job); null once removed or on error"
    )
    error: dict[str, Any] | None = Field(description="problem details (RFC 9457) when not ok")


class ActionResults(BaseModel):
    results: list[ActionResult]


@router.post("/actions", response_model=ActionResults)
def act_on_jobs(body: JobActions, manager: Manager, request: Request) -> Response:
    """Start, pause, resume, kill, restart or remove up to 500 jobs, each on its own.

    Always 200 when the request is well formed: each result says what the job's
    own route would have said (200, 202 for an intent left to its worker, 201
    for a restart, 204 for a removal; 404 or 409 with problem details).
    """
    results = [_result(manager, body, job_id) for job_id in dict.fromkeys(body.ids)]
    done = [r.id for r in results if r.ok]
    note_for_audit(request, action=body.action, ids=done, refused=len(results) - len(done))
    return answer(ActionResults.model_construct(results=results))


def _result(manager: JobManager, body: JobActions, job_id: int) -> ActionResult:
    try:
        status, job = _apply(manager, body.action, job_id, force=body.force)
    except JobyardError as exc:
        error = problem_body(exc.status, exc.detail, _path(body.action, job_id), **exc.extra)
        return ActionResult(id=job_id, ok=False, status=exc.status, job=None, error=error)
    shown = None if job is None else JobOut.of(job, utcnow())
    return ActionResult(id=job_id, ok=True, status=status, job=shown, error=None)


def _apply(
    manager: JobManager, action: Action, job_id: int, *, force: bool
) -> tuple[int, Job | None]:
    """The status and job the single route answers for ``action`` on ``job_id``."""
    if action is Action.RESTART:
        return 201, manager.restart(job_id)
    if action is Action.REMOVE:
        manager.remove(job_id, force=force)
        return 204, None
    job = manager.act(job_id, Event(action.value))
    return (202 if job.control is not None else 200), job


def _path(action: Action, job_id: int) -> str:
    """The single route's path: where the problem would have been answered."""
    return f"{JOBS}/{job_id}" if action is Action.REMOVE else f"{JOBS}/{job_id}/{action.value}"
