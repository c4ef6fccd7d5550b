"""Request and response bodies of the HTTP API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Self
from urllib.parse import quote

from fastapi import Response
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import to_json

from jobyard.events.records import LogWritten
from jobyard.jobtypes.spec import PRIORITY_LIMIT, check_name
from jobyard.models import Condition, Job
from jobyard.schedules.spec import not_a_timestamp
from jobyard.states import Control, JobState
from jobyard.storable import INT64_MAX

Name = Field(default=None, min_length=1, max_length=200)


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999, in UTC it is another year
        raise ValueError("out of range: in UTC it falls before year 1 or after 9999") from None


UtcTime = Annotated[AwareDatetime, BeforeValidator(not_a_timestamp), AfterValidator(_in_utc)]


def _no_trailing_space(key: str) -> str:
    # MariaDB compares text without its trailing spaces: "k " would be "k" there, and
    # another key everywhere else.
    if key.endswith(" "):
        raise ValueError("must not end with a space")
    return key


IdempotencyKey = Annotated[str, AfterValidator(_no_trailing_space)]


def answer(
    body: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``body`` as a JSON answer, serialised here, once.

    A model that a plain ``def`` endpoint returns is validated again against the
    route's ``response_model``, in a trip through the thread pool of its own; a
    :class:`~fastapi.Response` is sent as it is. The route keeps its ``response_model``
    for the OpenAPI document.
    """
    return Response(body.model_dump_json(), status_code, headers, media_type="application/json")


def answer_plain(
    body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``body``, plain values laid out as a response model (:func:`shown_job`), as JSON.

    Serialised as :func:`answer` serialises a model: NaN and infinities become null.
    """
    content = to_json(body, inf_nan_mode="null")
    return Response(content, status_code, headers, media_type="application/json")


def location(collection: str, key: str | int) -> str:
    """The ``Location`` of the resource ``key`` of ``collection`` (``/api/v1/jobs``).

    An absolute path, the one form of every ``Location`` (docs/api.md): a client
    resolves it against the URL it asked (RFC 9110 §10.2.2), so it holds behind a
    proxy, whatever host and scheme the request reached this server with.
    """
    return f"{collection}/{quote(str(key), safe='@')}"


class DependencyIn(BaseModel):
    """Wait for another job: ``on`` succeeded (default), failed, or finished (either)."""

    model_config = ConfigDict(extra="forbid")

    job: int = Field(ge=1, le=INT64_MAX)
    on: Condition = Condition.SUCCEEDED


class DependencyOut(BaseModel):
    job: int
    on: Condition
    state: JobState | None = Field(description="the upstream job's state (null: removed)")


class BatchJob(BaseModel):
    """A job of a batch: a type, its arguments, and how to schedule it."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=200, description="job type name")
    args: dict[str, Any] = Field(default_factory=dict, description="validated against the type")
    priority: int | None = Field(default=None, ge=-PRIORITY_LIMIT, le=PRIORITY_LIMIT)
    queue: Annotated[str, AfterValidator(check_name)] | None = Field(
        default=None, description="a queue name: 1-100 letters, digits, '_', '.' or '-'"
    )
    run_at: UtcTime | None = Field(default=None, description="not before this time")
    hold: bool = Field(default=False, strict=True, description="create held; start it later by id")
    name: str | None = Name
    idempotency_key: IdempotencyKey | None = Field(
        default=None, min_length=1, max_length=200, description="a repeat returns the first job"
    )
    depends_on: list[DependencyIn] = Field(
        default_factory=list, max_length=1000, description="run after these jobs end so"
    )


class SubmitJob(BatchJob):
    """A job to submit: a type, its arguments, and how to schedule it."""

    follow: bool = Field(
        default=False, strict=True, description="answer with the job's event stream"
    )


class SubmitBatch(BaseModel):
    """Jobs to submit at once; a batch answers with its jobs, so none has ``follow``."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[BatchJob] = Field(min_length=1, max_length=1000)


class RestartJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    args: dict[str, Any] | None = Field(default=None, description="override some arguments")
    follow: bool = Field(
        default=False, strict=True, description="answer with the new job's event stream"
    )


class Progress(BaseModel):
    fraction: float | None = None
    message: str | None = None


class Resources(BaseModel):
    runtime_seconds: float | None = Field(description="paused time excluded")
    paused_seconds: float
    cpu_seconds: float | None
    peak_memory_bytes: int | None
    output_bytes: int
    log_lines: int
    wait_seconds: float | None = Field(
        default=None, description="from ready (queued) to claimed by a worker, last attempt"
    )


class JobOut(BaseModel):
    id: int
    type: str
    name: str | None
    kind: str
    command: list[str] | None
    python: str | None
    args: dict[str, Any]
    queue: str
    priority: int
    state: JobState
    control: Control | None = Field(description="an intent its worker has yet to carry out")
    created_at: datetime
    updated_at: datetime
    run_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    attempt: int
    max_attempts: int
    restart_count: int
    exit_code: int | None
    error: str | None
    reason: str | None
    progress: Progress
    metrics: dict[str, Any]
    resources: Resources
    sla: dict[str, Any] | None = Field(default=None, description="the budgets watched")
    details: dict[str, Any]
    worker: str | None
    host: str | None
    pid: int | None
    idempotency_key: str | None
    restarted_from: int | None
    restarted_as: int | None
    workflow_run: int | None = Field(default=None, description="the workflow run it is a node of")
    node: str | None = Field(default=None, description="the workflow node it runs")
    depends_on: list[DependencyOut] = Field(
        default_factory=list,
        description="what it waits for: on a single job and the answer to its submit or restart",
    )
    logs_pruned_at: datetime | None = Field(
        default=None, description="when retention removed its log lines (its log is empty)"
    )
    events_pruned_at: datetime | None = Field(
        default=None, description="when retention removed its other events (state, progress…)"
    )

    @classmethod
    def of(cls, job: Job, now: datetime) -> Self:
        """The job as shown at ``now`` (a live job's runtime counts up to it)."""
        return cls.model_validate(shown_job(job, now))


def shown_job(job: Job, now: datetime) -> dict[str, Any]:
    """:class:`JobOut` of ``job`` at ``now`` as plain values, its fields in its order.

    A list of jobs is answered from these with :func:`answer_plain`: checking a model
    per job of values the store made cost three times their serialisation.
    ``tests/unit/test_api_schemas.py`` holds both forms to the same bytes.
    """
    spec = job.spec
    return {
        "id": job.id,
        "type": job.type,
        "name": job.name,
        "kind": spec.kind,
        "command": spec.argv,
        "python": spec.python,
        "args": job.args,
        "queue": job.queue,
        "priority": job.priority,
        "state": job.state,
        "control": job.control,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "run_at": job.run_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "restart_count": job.restart_count,
        "exit_code": job.exit_code,
        "error": job.error,
        "reason": job.reason,
        "progress": {"fraction": _real(job.progress), "message": job.progress_message},
        "metrics": job.metrics,
        "resources": {
            "runtime_seconds": _real(job.runtime_at(now)),
            "paused_seconds": float(job.paused_at_time(now)),
            "cpu_seconds": _real(job.cpu_seconds),
            "peak_memory_bytes": job.peak_memory,
            "output_bytes": job.output_bytes,
            "log_lines": job.log_lines,
            "wait_seconds": _real(job.wait_seconds),
        },
        "sla": None if spec.sla is None else spec.sla.to_dict(),
        "details": job.details,
        "worker": job.worker,
        "host": job.host,
        "pid": job.pid,
        "idempotency_key": job.idempotency_key,
        "restarted_from": job.restarted_from,
        "restarted_as": job.restarted_as,
        "workflow_run": job.workflow_run,
        "node": job.node,
        "depends_on": [],
        "logs_pruned_at": job.logs_pruned_at,
        "events_pruned_at": job.events_pruned_at,
    }


def _real(value: float | None) -> float | None:
    """A ``float`` field's value as the model makes it (an int 1 is shown 1.0)."""
    return None if value is None else float(value)


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    page: int
    per_page: int
    next: str | None  # the ``after`` of the page that follows; null when this one is not full


class BatchOut(BaseModel):
    ids: list[int]
    items: list[JobOut]


class LogLineOut(BaseModel):
    seq: int
    at: datetime
    stream: str
    line: str

    @classmethod
    def of(cls, line: LogWritten) -> Self:
        return cls(seq=line.seq, at=line.at, stream=line.stream, line=line.line)


class LogPage(BaseModel):
    items: list[LogLineOut]
    next_after: int = Field(description="pass as `after` to get the following lines")
    state: JobState


class JobTypeOut(BaseModel):
    name: str
    description: str | None
    kind: str
    source: str
    params: dict[str, Any] = Field(description="JSON Schema (draft 2020-12) of the arguments")
    defaults: dict[str, Any]
    definition: dict[str, Any]


class JobTypeList(BaseModel):
    items: list[JobTypeOut]
    total: int
