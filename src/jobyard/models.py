"""Domain objects: frozen data without I/O.

A :class:`Job` is a row of the ``jobs`` table turned into data; a
:class:`JobSpec` is what a worker needs to run it, resolved from the job type
and the arguments at submission and frozen on the job (so a later edit of the
type never changes a job already submitted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, Self

from jobyard.states import Control, JobState

if TYPE_CHECKING:
    from jobyard.events.records import LogWritten, Record


class Backoff(StrEnum):
    FIXED = "fixed"
    EXPONENTIAL = "exponential"


class RestartPolicy(StrEnum):
    NEVER = "never"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


@dataclass(frozen=True)
class RetryPolicy:
    """``max`` extra attempts after the first, waiting ``initial`` seconds (then doubling)."""

    max: int = 0
    backoff: Backoff = Backoff.EXPONENTIAL
    initial: float = 10.0
    max_delay: float = 3600.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt + 1`` (``attempt`` ≥ 1)."""
        if self.backoff is Backoff.FIXED:
            return min(self.initial, self.max_delay)
        return float(min(self.initial * 2 ** max(attempt - 1, 0), self.max_delay))

    def to_dict(self) -> dict[str, Any]:
        return {
            "max": self.max,
            "backoff": self.backoff.value,
            "initial": self.initial,
            "max_delay": self.max_delay,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            max=int(data.get("max", 0)),
            backoff=Backoff(data.get("backoff", Backoff.EXPONENTIAL)),
            initial=float(data.get("initial", 10.0)),
            max_delay=float(data.get("max_delay", 3600.0)),
        )


@dataclass(frozen=True)
class Sla:
    """A job's budgets, watched while it runs (see :mod:`jobyard.worker.sla`).

    ``max_data`` caps a metric the job reports itself (``(name, limit)``, e.g.
    ``("rows", 1e6)``). With ``expected`` set to ``"auto"`` a run that takes more
    than ``factor`` times the p95 runtime of its type's recent successes breaches
    too. ``on_breach`` is ``"notify"`` or ``"kill"``.
    """

    max_runtime: float | None = None
    max_output: int | None = None
    max_data: tuple[str, float] | None = None
    on_breach: str = "notify"
    expected: str | None = None
    factor: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        data = (
            None
            if self.max_data is None
            else {"metric": self.max_data[0], "limit": self.max_data[1]}
        )
        return {
            "max_runtime": self.max_runtime,
            "max_output": self.max_output,
            "max_data": data,
            "on_breach": self.on_breach,
            "expected": self.expected,
            "factor": self.factor,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        budget = data.get("max_data")
        return cls(
            max_runtime=data.get("max_runtime"),
            max_output=data.get("max_output"),
            max_data=None if not budget else (str(budget["metric"]), float(budget["limit"])),
            on_breach=str(data.get("on_breach") or "notify"),
            expected=data.get("expected"),
            factor=float(data.get("factor") or 2.0),
        )


@dataclass(frozen=True)
class JobSpec:
    """How to run one job: resolved at submission, frozen on the job row.

    Exactly one of ``argv`` (a command, already substituted, never run through a
    shell unless ``shell`` is set) and ``python`` (``module:attr``) is set.
    """

    argv: list[str] | None = None
    python: str | None = None
    args: dict[str, Any] = field(default_factory=dict)  # keyword args of a Python job
    shell: bool = False
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout: float | None = None
    kill_grace: float | None = None
    retries: RetryPolicy = field(default_factory=RetryPolicy)
    restart: RestartPolicy = RestartPolicy.NEVER
    restart_backoff: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max=0, initial=1.0, max_delay=300.0)
    )
    sla: Sla | None = None
    tags: tuple[str, ...] = ()  # a worker needs all of them to run the job (routing.py)
    user: str | None = None  # the OS user its processes run as (runner/accounts.py)
    # where it runs: None on the worker's host, {"slurm": {...}} on a Slurm cluster
    executor: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return "python" if self.python else "command"

    def to_dict(self) -> dict[str, Any]:
        return {
            "argv": self.argv,
            "python": self.python,
            "args": self.args,
            "shell": self.shell,
            "env": self.env,
            "cwd": self.cwd,
            "timeout": self.timeout,
            "kill_grace": self.kill_grace,
            "retries": self.retries.to_dict(),
            "restart": self.restart.value,
            "restart_backoff": self.restart_backoff.to_dict(),
            "sla": None if self.sla is None else self.sla.to_dict(),
            "tags": list(self.tags),
            "user": self.user,
            **({} if self.executor is None else {"executor": self.executor}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            argv=list(data["argv"]) if data.get("argv") is not None else None,
            python=data.get("python"),
            args=dict(data.get("args") or {}),
            shell=bool(data.get("shell", False)),
            env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
            cwd=data.get("cwd"),
            timeout=data.get("timeout"),
            kill_grace=data.get("kill_grace"),
            retries=RetryPolicy.from_dict(data.get("retries") or {}),
            restart=RestartPolicy(data.get("restart", RestartPolicy.NEVER)),
            restart_backoff=RetryPolicy.from_dict(
                data.get("restart_backoff") or {"initial": 1.0, "max_delay": 300.0}
            ),
            sla=Sla.from_dict(data["sla"]) if data.get("sla") else None,
            tags=tuple(data.get("tags") or ()),
            user=data.get("user"),
            executor=dict(data["executor"]) if data.get("executor") else None,
        )


@dataclass(frozen=True)
class Job:
    """One job as stored. Times are timezone-aware UTC."""

    id: int
    type: str
    name: str | None
    args: dict[str, Any]
    spec: JobSpec
    queue: str
    priority: int
    state: JobState
    control: Control | None
    created_at: datetime
    updated_at: datetime
    run_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    paused_at: datetime | None = None
    paused_seconds: float = 0.0
    attempt: int = 0
    max_attempts: int = 1
    restart_count: int = 0
    exit_code: int | None = None
    error: str | None = None
    reason: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    output_bytes: int = 0
    log_lines: int = 0
    cpu_seconds: float | None = None
    peak_memory: int | None = None
    worker: str | None = None
    host: str | None = None
    pid: int | None = None
    lease_expires_at: datetime | None = None
    idempotency_key: str | None = None
    restarted_from: int | None = None
    restarted_as: int | None = None
    workflow_run: int | None = None
    node: str | None = None
    deps_pending: int = 0  # dependencies not met yet: the job is ready when it reaches 0
    runtime_seconds: float | None = None  # of the last attempt, once it ended
    wait_seconds: float | None = None  # of the last attempt: queued (ready) until claimed
    route: str = ""  # the tags of ``spec.tags``, sorted and comma-joined (routing.py)
    logs_pruned_at: datetime | None = None  # retention removed its log lines then
    events_pruned_at: datetime | None = None  # … and its other events

    @property
    def pauses(self) -> bool:
        """Paused, or about to be: paused with no resume asked, or running with a pause
        asked of its worker (what a user wants it to be)."""
        if self.state is JobState.PAUSED:
            return self.control is not Control.RESUME
        return self.state is JobState.RUNNING and self.control is Control.PAUSE

    def runtime_at(self, now: datetime) -> float | None:
        """Seconds the last attempt ran, paused time excluded: up to ``now`` while it is live.

        A job waiting for another attempt counts up to its last change (the attempt's end).
        """
        if self.started_at is None:
            return None
        end = self._attempt_end(now)
        return max((end - self.started_at).total_seconds() - self.paused_at_time(now), 0.0)

    def paused_at_time(self, now: datetime) -> float:
        """Seconds the last attempt spent paused: up to ``now`` while it is paused."""
        if self.paused_at is None or self.finished_at is not None:
            return self.paused_seconds
        pause = (self._attempt_end(now) - self.paused_at).total_seconds()
        return self.paused_seconds + max(pause, 0.0)

    def _attempt_end(self, now: datetime) -> datetime:
        return self.finished_at or (now if self.state.live else self.updated_at)

    def evolve(self, **changes: Any) -> Job:
        """A copy with ``changes``, as :func:`dataclasses.replace` makes it (a ``TypeError``
        for a field that is not one), copied as :meth:`from_fields` builds a job: replace
        calls ``__init__``, which sets every field through ``object.__setattr__`` (about
        15 times as long; bench/RESULTS.md), and a job is copied a few times on its way to
        its end. A job's ``__dict__`` holds its fields and nothing else (no cached
        property), so the copy carries nothing stale."""
        if not changes.keys() <= _JOB_FIELDS:
            wrong = sorted(changes.keys() - _JOB_FIELDS)
            raise TypeError(f"not fields of a Job: {', '.join(wrong)}")
        job = object.__new__(type(self))
        job.__dict__.update(self.__dict__, **changes)
        return job

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Job:
        """``Job(**fields)``, made as :func:`copy.copy` makes a copy: a frozen dataclass's
        ``__init__`` sets the fields one at a time through ``object.__setattr__``, and a
        store makes jobs by the thousand. Raises ``TypeError`` as ``__init__`` does for a
        field missing or unknown; unlike it, also for a field
        with a default factory (``metrics``, ``details``): a store reads every column,
        and a shared default would be one dict for every job."""
        job = object.__new__(cls)
        values = job.__dict__
        values.update(_JOB_DEFAULTS)
        values.update(fields)
        if values.keys() != _JOB_FIELDS:
            wrong = sorted(values.keys() ^ _JOB_FIELDS)
            raise TypeError(f"fields missing or unknown for a Job: {', '.join(wrong)}")
        return job


_JOB_FIELDS = frozenset(f.name for f in dataclasses.fields(Job))
_JOB_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(Job) if f.default is not dataclasses.MISSING
}


class Condition(StrEnum):
    """When a dependency is met (Slurm's afterok, afternotok, afterany)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    FINISHED = "finished"


@dataclass(frozen=True)
class Dependency:
    upstream: int
    condition: Condition = Condition.SUCCEEDED
    met: bool = False  # already met when the edge is stored (the upstream ended that way)


@dataclass(frozen=True)
class DependencyState:
    """A stored dependency with its upstream job's state now."""

    upstream: int
    condition: Condition
    state: JobState | None  # None: the upstream job was deleted
    met: bool = False  # counted off when the upstream ended as asked: met for good


class EventKind(StrEnum):
    """What a ``job_events`` row holds (the records are in :mod:`jobyard.events.records`)."""

    STATE = "state"
    PROGRESS = "progress"
    LOG = "log"
    METRIC = "metric"
    WORKFLOW = "workflow"  # a workflow run started or finished (stored on one of its jobs)
    SLA = "sla"  # a budget was exceeded (once per job and budget)
    NOTIFICATION = "notification"  # a notification's delivery state changed


class RunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class WorkflowRun:
    """One run of a workflow; its nodes are jobs with ``workflow_run`` = ``id``."""

    id: int
    workflow: str
    state: RunState
    args: dict[str, Any]
    trigger: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True)
class NodeJob:
    """A workflow node's newest job, as a run's view shows it: a few columns, not a Job."""

    job_id: int
    state: JobState
    attempt: int
    restarted_from: int | None = None

    @classmethod
    def of(cls, job: Job) -> NodeJob:
        return cls(job.id, job.state, job.attempt, job.restarted_from)


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    host: str
    pid: int
    version: str
    queues: list[str]
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    state: str = "running"  # running | draining
    tags: list[str] = field(default_factory=list)
    lease_timeout: float = 30.0  # a heartbeat older than this: the worker is lost
    drain_requested_at: datetime | None = None  # asked through the API to drain …
    drain_timeout: float | None = None  # … with this timeout (None: its own)

    def lost(self, now: datetime) -> bool:
        """Whether no heartbeat came within the worker's own lease timeout by ``now``."""
        return self.heartbeat_at + timedelta(seconds=self.lease_timeout) < now


@dataclass(frozen=True)
class NewJob:
    type: str
    args: dict[str, Any]
    spec: JobSpec
    queue: str
    priority: int
    state: JobState
    run_at: datetime | None = None
    name: str | None = None
    max_attempts: int = 1
    idempotency_key: str | None = None
    restarted_from: int | None = None
    depends_on: tuple[Dependency, ...] = ()
    node: str | None = None  # the workflow node this job runs
    workflow_run: int | None = None


@dataclass(frozen=True)
class JobQuery:
    page: int = 1
    per_page: int = 50
    sort: Sequence[str] = ("-created_at",)  # field names, "-" = descending; id breaks ties
    search: str | None = None  # case-insensitive, in type, name or args JSON (keys too)
    states: Sequence[JobState] = ()
    types: Sequence[str] = ()
    queues: Sequence[str] = ()
    workers: Sequence[str] = ()  # the worker that runs or last ran the job
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    # Only the jobs after a job with these values of ``order_keys(sort)`` (keyset paging:
    # unlike an offset, it skips none and repeats none when jobs come or go meanwhile).
    after: Sequence[Any] | None = None


def order_keys(sort: Sequence[str]) -> list[str]:
    """The keys a listing sorted by ``sort`` is in: each column once, up to the id, which
    breaks ties (in the first key's direction) and ends it, being unique."""
    keys: list[str] = []
    for item in sort:
        name = item.removeprefix("-")
        if name in {key.removeprefix("-") for key in keys}:
            continue  # a column sorted by already sorts nothing more
        keys.append(item)
        if name == "id":
            return keys
    first_descending = bool(sort) and sort[0].startswith("-")
    return [*keys, "-id" if first_descending else "id"]


def order_values(job: Job, sort: Sequence[str]) -> list[Any]:
    """``job``'s values of ``order_keys(sort)``: what :attr:`JobQuery.after` takes to list
    the jobs after it."""
    return [getattr(job, key.removeprefix("-")) for key in order_keys(sort)]


SORTABLE = frozenset(
    {
        "id",
        "created_at",
        "updated_at",
        "started_at",
        "finished_at",
        "priority",
        "state",
        "type",
        "queue",
        "run_at",
    }
)


#: The longest a claim's clock may lag behind the job it takes (see claim_values).
CLAIM_RACE = timedelta(seconds=1)

#: What every claim sets, whoever claims: a new attempt starts clean.
FRESH_ATTEMPT: dict[str, Any] = {
    "state": JobState.RUNNING,
    "pid": None,
    "control": None,
    "finished_at": None,
    "paused_at": None,
    "paused_seconds": 0.0,
    "cpu_seconds": None,  # of this attempt, shown from its first sample
    "peak_memory": None,
}


class Claimable(Protocol):
    """What a claim reads of the job it takes (a :class:`Job`, or its stored row)."""

    @property
    def updated_at(self) -> datetime: ...
    @property
    def run_at(self) -> datetime | None: ...
    @property
    def attempt(self) -> int: ...


def claim_values(
    job: Claimable, worker: str, host: str, now: datetime, lease_until: datetime
) -> dict[str, Any]:
    """The values a claim of the queued ``job`` by ``worker`` sets (:data:`FRESH_ATTEMPT`
    and the claim's own: a new attempt, its lease, how long the job waited).

    The claim's clock was read before its transaction saw the job: if the job was
    queued in between (its upstream's end settled meanwhile), it starts when it was
    queued, so that it never seems to start before what it waited for had finished.
    A job last changed further ahead than that race allows was changed by a host
    whose clock runs ahead: the claim's own clock is kept then, so that the run's
    start and end come from one clock.
    """
    ahead = job.updated_at - now
    started = job.updated_at if timedelta(0) < ahead <= CLAIM_RACE else now
    ready = job.updated_at if job.run_at is None else max(job.updated_at, job.run_at)
    return FRESH_ATTEMPT | {
        "worker": worker,
        "host": host,
        "started_at": started,
        "attempt": job.attempt + 1,
        "lease_expires_at": lease_until,
        "updated_at": started,
        "wait_seconds": max((started - ready).total_seconds(), 0.0),
    }


@dataclass(frozen=True)
class JobUpdate:
    """A compare-and-set change of one job: applied only while its state is ``expect``
    (and its pending control is not ``unless_control``).

    ``clears``: the control intent this change carried out, dropped only while it is
    still the pending one (a kill asked meanwhile stays for the worker to see).
    """

    job_id: int
    expect: frozenset[JobState]
    values: dict[str, Any] = field(default_factory=dict)  # column → value
    event: Record | None = None  # appended in the same transaction when applied
    unless_control: Control | None = None
    clears: Control | None = None


@dataclass(frozen=True)
class Ended:
    """A job as its end left it, and whether jobs wait for it (edges to settle).

    ``run_live``: another node of its workflow run was live in the commit that stored the
    end (the end leaves the run's state as it was; that node's own end looks at it).
    """

    job: Job
    awaited: bool = False
    run_live: bool = False


@dataclass(frozen=True)
class JobEnd:
    """The end of an attempt, written in one transaction: its last output, then ``update``.

    Nothing of it is written when the job is gone, is no longer run by ``worker``
    at ``attempt``, or its state left ``update.expect``.
    """

    update: JobUpdate
    worker: str
    attempt: int
    logs: Sequence[LogWritten] = ()
    events: Sequence[Record] = ()
    values: dict[str, Any] = field(default_factory=dict)  # output figures: log_lines, …
    # A system line written after the job's last one, numbered from the locked row (for
    # an end written by someone other than the run, which may still be writing lines).
    note: str | None = None
    # Written only if the job's lease, as the locked row holds it, ended by then (a
    # recovery of a lost worker's job: a renewal since it was read keeps the job).
    lapsed_by: datetime | None = None
    # Written instead of ``update`` when the locked row holds a user's kill: an end that
    # would run the job again (a retry, a restart, a hand-back) ends it killed.
    if_killed: JobUpdate | None = None
    # Written instead of ``update`` when the locked row is paused, or about to be: paused
    # with no resume asked, or running with a pause asked (a hand-back: held, not queued).
    if_paused: JobUpdate | None = None

    @property
    def choices(self) -> tuple[JobUpdate, ...]:
        """Every update :meth:`update_for` may choose."""
        return tuple(u for u in (self.update, self.if_killed, self.if_paused) if u is not None)

    def update_for(self, job: Job) -> JobUpdate:
        """The update to write on ``job`` as it is now (its row locked)."""
        if self.if_killed is not None and job.control is Control.KILL:
            return self.if_killed
        if self.if_paused is not None and job.pauses:
            return self.if_paused
        return self.update
