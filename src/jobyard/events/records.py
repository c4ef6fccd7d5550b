"""The vocabulary of events: typed, past-tense records of what happened to a job or a run.

A record is frozen data: when (``at``) and the facts. Its class says the kind
it is stored under (``job_events.kind``, also its name on a job's own stream)
and its name on the global stream (``sse_name``). :meth:`Record.marshal` is
the JSON payload stored and sent; :func:`unmarshal` turns a stored kind and
payload back into the record. Some records carry a marker in their payload
(``"event": "created"``, ``"handed_back"``, ``"workflow_finished"``, …) that
tells them apart from other changes of the same kind.

:class:`JobEvent` is a stored record with its id and job; :class:`FeedEvent`
adds what the global stream shows of that job (type, queue, workflow node).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from types import UnionType
from typing import Any, ClassVar, Self, get_args, get_origin, get_type_hints

from jobyard.models import EventKind, RunState
from jobyard.states import JobState


@dataclass(frozen=True, kw_only=True)
class Record:
    """What happened and when; each subclass adds its facts."""

    kind: ClassVar[EventKind]
    sse_name: ClassVar[str]  # its name on the global stream
    node_name: ClassVar[str | None] = None  # … when its job is a node of a workflow run
    marker: ClassVar[str | None] = None  # stored as the payload's ``"event"``
    keep_none: ClassVar[bool] = False  # unknown facts are sent as null, not left out

    at: datetime

    def payload(self) -> dict[str, Any]:
        """The facts as JSON values, ``at`` and the marker apart."""
        facts = {name: _plain(getattr(self, name)) for name in _facts(type(self))}
        return facts if self.keep_none else {k: v for k, v in facts.items() if v is not None}

    def marshal(self) -> dict[str, Any]:
        """The stored payload: the facts and the marker."""
        return self.payload() | ({} if self.marker is None else {"event": self.marker})

    @classmethod
    def unmarshal(cls, at: datetime, data: Mapping[str, Any]) -> Self:
        """The record of a stored payload (what :meth:`marshal` made)."""
        facts = _facts(cls)
        return cls(at=at, **{k: _typed(facts[k], v) for k, v in data.items() if k in facts})


# -- a job's state -------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class JobStateRecord(Record):
    """A job's state as it became: a ``state`` event."""

    kind = EventKind.STATE
    sse_name = "job_state"
    node_name: ClassVar[str | None] = "workflow_node_state"

    state: JobState


@dataclass(frozen=True, kw_only=True)
class JobCreated(JobStateRecord):
    sse_name = "job_created"
    node_name = None
    marker = "created"


@dataclass(frozen=True, kw_only=True)
class JobPromoted(JobStateRecord):
    """A scheduled job's time came: it is queued."""

    marker = "promoted"
    state: JobState = JobState.QUEUED


@dataclass(frozen=True, kw_only=True)
class JobClaimed(JobStateRecord):
    """A worker took the job to run its attempt number ``attempt``."""

    state: JobState = JobState.RUNNING
    attempt: int
    worker: str


@dataclass(frozen=True, kw_only=True)
class JobStateChanged(JobStateRecord):
    """Any other change to a state that is not terminal (paused, resumed, ready, held …)."""

    reason: str | None = None
    previous: JobState | None = None
    resumed: bool | None = None


@dataclass(frozen=True, kw_only=True)
class JobRescheduled(JobStateRecord):
    """An attempt ended and the job runs again at ``run_at`` (a retry or a restart); or,
    lost while a user paused it, is ``held`` until someone resumes it (then from
    ``run_at``)."""

    reason: str | None = None
    attempt: int
    run_at: datetime
    exit_code: int | None = None
    restart_count: int


@dataclass(frozen=True, kw_only=True)
class JobHandedBack(JobStateRecord):
    """The worker stopped and gave the job back unfinished; it is queued again."""

    marker = "handed_back"
    reason: str
    attempt: int
    worker: str | None = None


@dataclass(frozen=True, kw_only=True)
class JobTerminated(JobStateRecord):
    """The job reached a terminal state."""

    sse_name = "job_terminated"
    reason: str | None = None
    attempt: int | None = None
    exit_code: int | None = None
    error: str | None = None
    runtime_seconds: float | None = None
    previous: JobState | None = None


# -- what a running job reports ----------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class LogWritten(Record):
    """One line of a job's output (``stream``: stdout, stderr or system); ``seq`` orders them."""

    kind = EventKind.LOG
    sse_name = "log"
    seq: int
    stream: str
    line: str


@dataclass(frozen=True, kw_only=True)
class ProgressReported(Record):
    kind = EventKind.PROGRESS
    sse_name = "progress"
    keep_none = True
    fraction: float | None
    message: str | None


@dataclass(frozen=True, kw_only=True)
class MetricReported(Record):
    kind = EventKind.METRIC
    sse_name = "metric"
    name: str
    value: float


@dataclass(frozen=True, kw_only=True)
class SlaBreached(Record):
    """A running job went over a budget (reported once per job and budget)."""

    kind = EventKind.SLA
    sse_name = "sla_breach"
    budget: str
    limit: float
    value: float
    action: str  # notify | kill
    metric: str | None = None
    attempt: int


# -- workflow runs and notifications -------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class WorkflowRunStarted(Record):
    """Stored with one of the run's jobs, like every workflow event."""

    kind = EventKind.WORKFLOW
    sse_name = marker = "workflow_started"
    run_id: int
    workflow: str
    trigger: str


@dataclass(frozen=True, kw_only=True)
class WorkflowRunFinished(Record):
    kind = EventKind.WORKFLOW
    sse_name = marker = "workflow_finished"
    run_id: int
    workflow: str
    state: RunState
    failed_nodes: tuple[str, ...] | None = None  # set when it failed


@dataclass(frozen=True, kw_only=True)
class WorkflowRunReopened(Record):
    """A node of a run that had ended was restarted: the run is running again.

    Stored with the restarted node's job; the run ends anew when its jobs do.
    """

    kind = EventKind.WORKFLOW
    sse_name = marker = "workflow_reopened"
    run_id: int
    workflow: str
    state: RunState = RunState.RUNNING


@dataclass(frozen=True, kw_only=True)
class NotificationAttempted(Record):
    """A delivery was tried; ``event`` is the notification's (``failed``, ``sla_breach`` …)."""

    kind = EventKind.NOTIFICATION
    sse_name = "notification"
    notification_id: int
    event: str
    channel: str
    status: str
    attempts: int
    error: str | None = None
    next_attempt_at: datetime | None = None


RECORDS: tuple[type[Record], ...] = (
    JobCreated,
    JobPromoted,
    JobClaimed,
    JobStateChanged,
    JobRescheduled,
    JobHandedBack,
    JobTerminated,
    LogWritten,
    ProgressReported,
    MetricReported,
    SlaBreached,
    WorkflowRunStarted,
    WorkflowRunFinished,
    WorkflowRunReopened,
    NotificationAttempted,
)
_MARKED = {cls.marker: cls for cls in RECORDS if cls.marker is not None}
_ONE_PER_KIND = {cls.kind: cls for cls in RECORDS if cls.kind is not EventKind.STATE}


def unmarshal(kind: str, at: datetime, data: Mapping[str, Any]) -> Record:
    """The record stored as ``kind`` with the payload ``data``."""
    return _record_class(EventKind(kind), data).unmarshal(at, data)


def _record_class(kind: EventKind, data: Mapping[str, Any]) -> type[Record]:
    if kind is not EventKind.STATE and kind is not EventKind.WORKFLOW:
        return _ONE_PER_KIND[kind]
    if data.get("event") in _MARKED:
        return _MARKED[data["event"]]
    if JobState(data["state"]).terminal:
        return JobTerminated
    if "run_at" in data:
        return JobRescheduled
    return JobClaimed if "worker" in data else JobStateChanged


# -- stored records --------------------------------------------------------------------------
@dataclass(frozen=True)
class JobEvent:
    """A record as stored in a job's event log: ``id`` orders events across all jobs."""

    id: int
    job_id: int
    record: Record

    @property
    def kind(self) -> EventKind:
        return self.record.kind

    def marshal(self) -> dict[str, Any]:
        """The payload on the job's own stream, where the message is named by the kind."""
        return {"job_id": self.job_id, "at": self.record.at.isoformat(), **self.record.marshal()}


@dataclass(frozen=True)
class FeedEvent:
    """A stored record as the live feed reads it: with its job's type, queue and node."""

    event: JobEvent
    type: str | None
    queue: str | None
    workflow_run: int | None = None
    node: str | None = None

    @property
    def sse_name(self) -> str:
        """Its name on the global stream."""
        record = self.event.record
        if self.workflow_run is not None and record.node_name is not None:
            return record.node_name
        return record.sse_name

    def marshal(self) -> dict[str, Any]:
        """The payload on the global stream (where the name says what the marker says)."""
        event = self.event
        where = {"job_id": event.job_id, "type": self.type, "queue": self.queue}
        payload = where | {"at": event.record.at.isoformat(), **event.record.payload()}
        if self.workflow_run is not None:
            payload |= {"workflow_run": self.workflow_run, "node": self.node}
        return payload


def _facts(cls: type[Record]) -> dict[str, Any]:
    """The fact fields of a record class and their types (``at`` apart)."""
    if cls not in _FACTS:
        hints = get_type_hints(cls)
        _FACTS[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name != "at"}
    return _FACTS[cls]


_FACTS: dict[type[Record], dict[str, Any]] = {}


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return list(value) if isinstance(value, tuple) else value


def _typed(hint: Any, value: Any) -> Any:
    """A JSON value as the field's type wants it (enums, datetimes and tuples)."""
    if value is None:
        return None
    for option in get_args(hint) if isinstance(hint, UnionType) else (hint,):
        if isinstance(option, type) and issubclass(option, Enum):
            return option(value)
        if option is datetime:
            return datetime.fromisoformat(value)
        if get_origin(option) is tuple:
            return tuple(value)
    return value
