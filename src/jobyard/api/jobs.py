"""/api/v1/jobs: submit, list, inspect, control, restart, remove, logs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from starlette.convertors import Convertor, register_url_convertor

from jobyard.api import trail
from jobyard.api.cursor import cursor_after, read_cursor
from jobyard.api.params import JobId, Page, PerPage
from jobyard.api.problems import try_again
from jobyard.api.resources import choices, get_manager, get_node, split_names
from jobyard.api.schemas import (
    BatchJob,
    BatchOut,
    DependencyOut,
    JobOut,
    JobPage,
    LogLineOut,
    LogPage,
    RestartJob,
    SubmitBatch,
    SubmitJob,
    UtcTime,
    answer,
    answer_plain,
    location,
    shown_job,
)
from jobyard.api.shedding import asks_stream
from jobyard.api.streams import HeaderResume, event_stream, job_messages
from jobyard.clock import utcnow
from jobyard.errors import Invalid
from jobyard.manager import JobManager, Submission
from jobyard.models import SORTABLE, Dependency, Job, JobQuery
from jobyard.node import Node
from jobyard.states import Event, JobState
from jobyard.storable import INT64_MAX

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


class _JobSegment(Convertor[str]):
    """``/api/v1/jobs/{job_id}``'s segment: anything but the names of the collection's
    own paths, so that ``GET /api/v1/jobs/batch`` is the 405 of a path that takes only
    ``POST`` (not a 422 about an id). Any other text still reaches the id's check."""

    regex = r"(?!(?:batch|actions)$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)  # an id, given as an int to url_path_for


register_url_convertor("job_segment", _JobSegment())
ONE_JOB = "/{job_id:job_segment}"
Manager = Annotated[JobManager, Depends(get_manager)]
NodeDep = Annotated[Node, Depends(get_node)]


def _submission(body: BatchJob) -> Submission:
    fields = body.model_dump(exclude={"follow", "depends_on"})
    depends_on = tuple(Dependency(d.job, d.on) for d in body.depends_on)
    return Submission(**fields, depends_on=depends_on)


@router.post(
    "",
    status_code=201,
    response_model=JobOut,
    responses={
        200: {
            "model": JobOut,
            "description": "the first job of a repeated idempotency_key",
            "content": {"text/event-stream": {}},
        },
        201: {"content": {"text/event-stream": {}}},
    },
)
def submit(body: SubmitJob, node: NodeDep, request: Request) -> Response:
    """Submit a job. A repeated ``idempotency_key`` returns the first job with 200.

    With ``"follow": true`` (or ``Accept: text/event-stream``) the answer is the
    job's event stream until it ends, as from ``GET /api/v1/jobs/{id}/events``.
    """

    def outcome(added: Sequence[tuple[Job, bool]]) -> tuple[int, str]:
        job, created = added[0]
        return _status(created), location(router.prefix, job.id)

    if body.follow and (refused := _no_stream_room(request)):
        return refused
    audit = trail.in_transaction(request, node.audit, outcome)
    job, created = node.manager.submit(_submission(body), audit=audit)
    deps = bool(body.depends_on) or not created  # a repeated key: the first job's own
    return _created(node, job, created, request, follow=body.follow, deps=deps)


def _no_stream_room(request: Request) -> Response | None:
    """A 503 before anything is stored, when a stream asked for in the body (which load
    shedding counted as a request) would pass the server's limit of open streams."""
    shed = request.app.state.shed
    if not shed.full("streams") or asks_stream(request.scope):  # else shed already, as a stream
        return None
    return try_again(request, shed.detail("streams"))


def _status(created: bool) -> int:
    return status.HTTP_201_CREATED if created else status.HTTP_200_OK


def _created(
    node: Node, job: Job, created: bool, request: Request, *, follow: bool, deps: bool
) -> Response:
    """The answer about a new (or found) job: the job, or its event stream until it ends.

    ``deps``: the job may wait for others, shown as on ``GET`` (a read, only then).
    """
    code = _status(created)
    where = location(router.prefix, job.id)
    if follow or asks_stream(request.scope):
        stream = event_stream(
            request, node, lambda idle: job_messages(node, job.id, 0, idle=idle), code
        )
        stream.headers["Location"] = where
        return stream
    if not deps:  # the common case: answered from plain values, no model checked
        return answer_plain(shown_job(job, utcnow()), code, {"Location": where})
    out = JobOut.of(job, utcnow())
    out.depends_on = _dependencies(node.manager, job.id)
    return answer(out, code, {"Location": where})


@router.post("/batch", status_code=201, response_model=BatchOut)
def submit_batch(body: SubmitBatch, node: NodeDep, request: Request) -> Response:
    """Submit many jobs in one transaction: all are created, or none (422 names the bad ones)."""
    path = request.scope["path"]
    audit = trail.in_transaction(request, node.audit, lambda added: (201, path))
    added = node.manager.submit_many([_submission(job) for job in body.jobs], audit=audit)
    now = utcnow()
    items = [shown_job(job, now) for job, _ in added]
    return answer_plain({"ids": [job.id for job, _ in added], "items": items}, 201)


@router.get("", response_model=JobPage)
def list_jobs(
    manager: Manager,
    page: Page = 1,
    per_page: PerPage = 50,
    sort: Annotated[str, Query(description="fields, comma separated; '-' descends")] = (
        "-created_at"
    ),
    search: Annotated[str | None, Query(max_length=200)] = None,
    state: Annotated[list[str], Query(description="repeat or comma separate")] = [],  # noqa: B006
    type: Annotated[list[str], Query()] = [],  # noqa: B006
    queue: Annotated[list[str], Query()] = [],  # noqa: B006
    worker: Annotated[list[str], Query(description="running or last run by")] = [],  # noqa: B006
    since: Annotated[UtcTime | None, Query(description="created at or after")] = None,
    until: Annotated[UtcTime | None, Query(description="created before")] = None,
    after: Annotated[
        str | None, Query(max_length=4000, description="a page's `next`: the jobs after it")
    ] = None,
) -> Response:
    """Current and past jobs, paginated, filtered, sorted and searched.

    ``after`` (a page's ``next``) starts the listing after that page's last job, as it
    was sorted: following ``next`` lists every job once, even while others come or go.
    """
    keys = _sort_keys(sort)
    query = JobQuery(
        page=page,
        per_page=per_page,
        sort=keys,
        search=search or None,
        states=_states(state),
        types=split_names(type),
        queues=split_names(queue),
        workers=split_names(worker),
        since=since,
        until=until,
        after=None if after is None else read_cursor(after, keys),
    )
    jobs, total = manager.find(query)
    now = utcnow()  # one moment for the whole page
    items = [shown_job(job, now) for job in jobs]
    more = cursor_after(jobs[-1], keys) if len(jobs) == per_page else None
    page_of = {"items": items, "total": total, "page": page, "per_page": per_page}
    return answer_plain(page_of | {"next": more})


@router.get(ONE_JOB, response_model=JobOut, name="get_job")
def get_job(job_id: JobId, manager: Manager) -> Response:
    out = JobOut.of(manager.get(job_id), utcnow())
    out.depends_on = _dependencies(manager, job_id)
    return answer(out)


def _dependencies(manager: JobManager, job_id: int) -> list[DependencyOut]:
    return [
        DependencyOut(job=d.upstream, on=d.condition, state=d.state)
        for d in manager.dependencies(job_id)
    ]


def _control(event: Event, summary: str) -> None:
    def endpoint(job_id: JobId, manager: Manager) -> Response:
        job = manager.act(job_id, event)
        # an intent recorded for the worker, not done yet: 202
        code = status.HTTP_200_OK if job.control is None else status.HTTP_202_ACCEPTED
        return answer(JobOut.of(job, utcnow()), code)

    endpoint.__doc__ = (
        f"{summary} 409 when the job's state forbids it. On a running job the action "
        "is an intent carried out by its worker: 202, and `control` shows it."
    )
    router.add_api_route(
        f"/{{job_id}}/{event.value}",
        endpoint,
        methods=["POST"],
        response_model=JobOut,
        name=f"{event.value}_job",
        responses={202: {"model": JobOut, "description": "recorded for the worker"}},
    )


_control(Event.START, "Release a held job.")
_control(Event.PAUSE, "Pause a running job (SIGSTOP), or hold one that has not started.")
_control(Event.RESUME, "Resume a paused job (SIGCONT), or release a held one.")
_control(Event.KILL, "Kill a job: SIGTERM, then SIGKILL after its grace period.")


@router.post(
    "/{job_id}/restart",
    status_code=201,
    response_model=JobOut,
    responses={201: {"content": {"text/event-stream": {}}}},
)
def restart_job(
    job_id: JobId, node: NodeDep, request: Request, body: RestartJob | None = None
) -> Response:
    """A new job with the same type and arguments (some may be overridden).

    A job is restarted once: a second restart is 409, its ``restarted_as`` naming
    the first one's job (restart that one to run it again). With ``"follow": true``
    (or ``Accept: text/event-stream``) the answer is the new job's event stream
    until it ends, as for a submission.
    """
    follow = body is not None and body.follow
    if follow and (refused := _no_stream_room(request)):
        return refused
    job = node.manager.restart(job_id, body.args if body else None)
    return _created(node, job, True, request, follow=follow, deps=True)  # carried over


@router.delete(ONE_JOB, status_code=204)
def remove_job(job_id: JobId, manager: Manager, force: bool = False) -> Response:
    """Remove a finished job and its history; ``force`` a live or pending one too. A workflow
    run's job is a 409 naming the run (``workflow_run``): the run needs it to run again."""
    manager.remove(job_id, force=force)
    return Response(status_code=204)


@router.get(
    "/{job_id}/logs",
    response_model=LogPage,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def job_logs(
    job_id: JobId,
    node: NodeDep,
    request: Request,
    resume: HeaderResume,
    after: Annotated[int, Query(ge=0, le=INT64_MAX, description="sequence number")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    follow: Annotated[bool, Query(description="stream `log` events (SSE) until the end")] = False,
) -> Response:
    """Log lines in order, a page at a time (``after`` = last sequence seen).

    With ``follow=true``: a stream of ``log`` events with ``seq`` > ``after``
    (message ids are event ids, so ``Last-Event-ID`` resumes it), ending with
    ``close`` when the job ends.
    """
    manager = node.manager
    if follow:
        manager.get(job_id)
        return event_stream(
            request,
            node,
            lambda idle: job_messages(
                node, job_id, resume or 0, logs_only=True, after_seq=after, idle=idle
            ),
        )
    state, lines = manager.log_page(job_id, after, limit)
    next_after = (lines[-1].seq or after) if lines else after
    page = LogPage(items=[LogLineOut.of(e) for e in lines], next_after=next_after, state=state)
    return answer(page)


def _states(values: list[str]) -> list[JobState]:
    names = choices("state", values, [s.value for s in JobState])
    return [JobState(name) for name in names]


def _sort_keys(sort: str) -> list[str]:
    keys = split_names([sort])
    bad = [key for key in keys if key.removeprefix("-") not in SORTABLE]
    if bad:
        allowed = ", ".join(sorted(SORTABLE))
        raise Invalid(
            f"cannot sort by {bad[0]!r}",
            [{"field": "sort", "location": "query", "message": f"sortable: {allowed}"}],
        )
    return keys or ["-created_at"]
