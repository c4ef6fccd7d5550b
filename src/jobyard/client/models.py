"""What the Python client returns: frozen data, built from the API's JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, Self, TypeVar

# Re-exported: the CLI and older code import these from here.
from jobyard.client.events import Event as Event
from jobyard.client.values import FAILED_STATES as FAILED_STATES
from jobyard.client.values import TERMINAL_STATES as TERMINAL_STATES
from jobyard.client.values import parse_time as parse_time

T = TypeVar("T")


def plain(value: Any) -> Any:
    """``value`` made of JSON types only (datetimes in ISO 8601), for printing."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Progress:
    fraction: float | None = None
    message: str | None = None


@dataclass(frozen=True)
class Resources:
    """What the job used; ``runtime_seconds`` excludes paused time."""

    runtime_seconds: float | None = None
    paused_seconds: float = 0.0
    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None
    output_bytes: int = 0
    log_lines: int = 0
    wait_seconds: float | None = None


@dataclass(frozen=True)
class Dependency:
    """A job waited for: it must end ``on`` succeeded (default), failed or finished (either).

    Pass it to :meth:`Client.submit` as ``depends_on``; a job shown by the
    server carries its own, with ``state`` the upstream job's (``None``: removed).
    """

    job: int
    on: str = "succeeded"
    state: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_only(cls, data))


@dataclass(frozen=True)
class JobInfo:
    """One job as the API shows it (``GET /api/v1/jobs/{id}``).

    ``sla`` holds the budgets watched while it runs (``None``: none);
    ``depends_on`` what it waits for, filled only on a single job (listings
    leave it empty).
    """

    id: int
    type: str
    name: str | None
    kind: str
    command: list[str] | None
    python: str | None
    args: dict[str, Any]
    queue: str
    priority: int
    state: str
    control: str | None
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
    sla: dict[str, Any] | None
    details: dict[str, Any]
    worker: str | None
    host: str | None
    pid: int | None
    idempotency_key: str | None
    restarted_from: int | None
    restarted_as: int | None
    depends_on: list[Dependency]
    workflow_run: int | None = None  # the workflow run it is a node of
    node: str | None = None  # … and the node it runs
    logs_pruned_at: datetime | None = None  # retention removed its log lines then
    events_pruned_at: datetime | None = None  # … and its other events

    @property
    def terminal(self) -> bool:
        """It has ended (succeeded, failed, killed or upstream_failed)."""
        return self.state in TERMINAL_STATES

    @property
    def failed(self) -> bool:
        """It ended without succeeding."""
        return self.state in FAILED_STATES

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        times = {"created_at", "updated_at", "run_at", "started_at", "finished_at"}
        times |= {"logs_pruned_at", "events_pruned_at"}
        nested = {"progress", "resources", "depends_on"}
        known = {f.name for f in dataclasses.fields(cls)} - times - nested
        values: dict[str, Any] = {name: data.get(name) for name in known}
        values |= {name: parse_time(data.get(name)) for name in times}
        return cls(
            **values,
            progress=Progress(**_only(Progress, data.get("progress"))),
            resources=Resources(**_only(Resources, data.get("resources"))),
            depends_on=[Dependency.from_dict(item) for item in data.get("depends_on") or []],
        )


@dataclass(frozen=True)
class ActionResult:
    """How one job of :meth:`Client.act_many` went; ``status`` is what its own route answers.

    ``job`` is the job after the action (for a restart the new job; ``None`` once
    removed, or on error); ``error`` the problem details when not ``ok``.
    """

    id: int
    ok: bool
    status: int
    job: JobInfo | None = None
    error: dict[str, Any] | None = None

    @property
    def message(self) -> str:
        """The error's detail ("" when it went well)."""
        return str((self.error or {}).get("detail") or "")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        job = data.get("job")
        return cls(
            id=data["id"],
            ok=data["ok"],
            status=data["status"],
            job=JobInfo.from_dict(job) if job else None,
            error=data.get("error"),
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a numbered listing; ``total`` counts every match.

    A subclass names the class of its items in ``item``.
    """

    items: list[T]
    total: int
    page: int
    per_page: int
    item: ClassVar[type[Any]]

    @property
    def pages(self) -> int:
        return max(-(-self.total // self.per_page), 1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        items = [cls.item.from_dict(entry) for entry in data["items"]]
        return cls(items=items, total=data["total"], page=data["page"], per_page=data["per_page"])


@dataclass(frozen=True)
class JobPage(Page[JobInfo]):
    """One page of a job listing; ``total`` counts every match. ``next``, passed as
    ``after``, lists the jobs after this page's last; None when this page is not full."""

    item = JobInfo
    next: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        page = super().from_dict(data)
        return dataclasses.replace(page, next=data.get("next"))


@dataclass(frozen=True)
class LogLine:
    """One line of a job's output; ``stream`` is stdout, stderr or system."""

    seq: int
    at: datetime | None
    stream: str
    line: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            seq=int(data["seq"]),
            at=parse_time(data.get("at")),
            stream=str(data.get("stream", "stdout")),
            line=str(data["line"]),
        )


@dataclass(frozen=True)
class LogPage:
    """Log lines after a sequence number; pass ``next_after`` as ``after`` for the next page."""

    items: list[LogLine]
    next_after: int
    state: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        items = [LogLine.from_dict(item) for item in data["items"]]
        return cls(items=items, next_after=data["next_after"], state=data["state"])


@dataclass(frozen=True)
class JobTypeInfo:
    """A job type: ``params`` is the JSON Schema of its arguments."""

    name: str
    description: str | None
    kind: str
    source: str
    params: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    definition: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_only(cls, data))


@dataclass(frozen=True)
class WorkerStatus:
    """A registered worker (``GET /api/v1/workers/{name}``); ``running`` lists job ids."""

    name: str
    host: str
    pid: int
    version: str
    started_at: datetime | None
    heartbeat_at: datetime | None
    state: str  # running | draining | lost
    queues: list[str]
    tags: list[str]
    concurrency: int
    running: list[int]
    drain_requested_at: datetime | None = None
    lease_timeout: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_only(cls, data, ("started_at", "heartbeat_at", "drain_requested_at")))


@dataclass(frozen=True)
class Notification:
    """One message of the outbox (``GET /api/v1/notifications``): to one channel, or recorded."""

    id: int
    event: str
    job_id: int | None
    run_id: int | None
    channel: str | None
    recipients: list[str]
    status: str  # pending | sent | failed | recorded
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    data: dict[str, Any]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        times = ("next_attempt_at", "sent_at", "created_at", "updated_at")
        return cls(**_only(cls, data, times))


@dataclass(frozen=True)
class NotificationPage(Page[Notification]):
    """One page of the outbox, newest first; ``total`` counts every match."""

    item = Notification


@dataclass(frozen=True)
class Me:
    """Who the client's credentials belong to (``GET /api/v1/me``).

    ``role`` is what its requests may do (a token's may be lower than its
    owner's); ``via`` is password, token or session; ``token_id`` the token's
    id when ``via`` is token; ``csrf_token`` the session's, with a session.
    """

    name: str
    role: str
    via: str
    token_id: int | None = None
    csrf_token: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_only(cls, data))


@dataclass(frozen=True)
class UserInfo:
    """A user (``GET /api/v1/users``); role is viewer, operator or admin."""

    name: str
    role: str
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_only(cls, data, ("created_at", "updated_at")))


@dataclass(frozen=True)
class TokenInfo:
    """An API token of ``user``'s; its secret is shown only once, at creation."""

    id: int
    name: str
    user: str
    role: str
    created_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    made_by: int | None = None  # the token it was made with: revoked with that one

    def valid(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now`` (an aware datetime)."""
        expired = self.expires_at is not None and self.expires_at <= now
        return self.revoked_at is None and not expired

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_only(cls, data, ("created_at", "expires_at", "revoked_at")))


@dataclass(frozen=True)
class CreatedToken:
    """A new token and its ``secret``: send it as ``Authorization: Bearer <secret>``."""

    token: TokenInfo
    secret: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(token=TokenInfo.from_dict(data), secret=str(data["token"]))


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit log: ``actor`` did ``action`` on ``target`` (via, from where).

    ``outcome`` is ok, denied (the role did not allow it) or failed (a wrong
    password); ``detail`` holds the method, status and query of an API change.
    """

    id: int
    at: datetime | None
    actor: str
    via: str
    action: str
    target: str
    outcome: str
    address: str
    detail: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_only(cls, data, ("at",)))


@dataclass(frozen=True)
class AuditPage(Page[AuditEntry]):
    """One page of the audit log, newest first; ``total`` counts every match."""

    item = AuditEntry


def _only(cls: type[Any], data: Any, times: Iterable[str] = ()) -> dict[str, Any]:
    """The keys of ``data`` that are fields of ``cls`` (newer servers may send more), with
    the fields named in ``times`` read as datetimes (None where missing)."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in (data or {}).items() if k in names}
    return values | {name: parse_time(values.get(name)) for name in times}
