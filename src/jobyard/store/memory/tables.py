"""The memory store's tables, under one lock, and values as the SQL store reads them back."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from jobyard.access.records import AuditEntry
from jobyard.events.records import JobCreated, JobEvent, LogWritten, Record, unmarshal
from jobyard.limits import Key
from jobyard.models import (
    Condition,
    Job,
    JobSpec,
    NewJob,
    RunState,
    WorkerInfo,
    WorkflowRun,
)
from jobyard.routing import route_of
from jobyard.states import Control, JobState
from jobyard.store.histograms import Counted, JobHistograms, of_jobs

T = TypeVar("T")
_WRITABLE = frozenset(field.name for field in dataclasses.fields(Job)) - {"id"}


@dataclasses.dataclass
class Edge:
    condition: Condition
    met: bool


class Tables:
    """Every table of one memory store; a part holds ``lock`` while it reads or writes
    (reentrant: a verb made of two holds it across both)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.jobs: dict[int, Job] = {}
        self.keys: dict[str, int] = {}  # idempotency key → job id
        self.events: dict[int, list[JobEvent]] = {}  # per job, by id
        self.edges: dict[tuple[int, int], Edge] = {}  # (waiting job, upstream job)
        self.runs: dict[int, WorkflowRun] = {}
        self.workers: dict[str, WorkerInfo] = {}
        self.job_types: dict[str, str] = {}  # name → definition as JSON
        self.limits: dict[Key, tuple[int, str]] = {}  # → (max_running, source)
        self.paused: set[str] = set()
        self.queues_set: set[str] = set()  # queues paused or resumed once: they have a state
        self.samples: dict[tuple[int, int], list[tuple[datetime, float, int]]] = {}
        self.audit: list[AuditEntry] = []  # kept, not searched: the API's audit is SQL only
        self.removed = JobHistograms({}, {})  # what removed jobs counted in the histograms
        self._ids: Counter[str] = Counter()

    def next_id(self, table: str) -> int:
        self._ids[table] += 1
        return self._ids[table]

    def add_event(self, job_id: int, record: Record) -> None:
        """Store ``record`` as the SQL store reads it back (its payload through JSON)."""
        self.add_stored(job_id, stored(record))

    def add_stored(self, job_id: int, record: Record) -> None:
        """Store ``record``, already as :func:`stored` makes it."""
        event = JobEvent(self.next_id("events"), job_id, record)
        self.events.setdefault(job_id, []).append(event)

    def where(self, keep: Callable[[Job], bool]) -> list[Job]:
        return [job for job_id, job in sorted(self.jobs.items()) if keep(job)]

    def remove(self, job_id: int) -> Job:
        """Take the job out of ``jobs``; what it counted in the histograms stays counted."""
        job = self.jobs.pop(job_id)
        self.removed = self.removed.plus(of_jobs([counted(job)]))
        return job

    def set(self, job_id: int, values: dict[str, Any]) -> Job:
        job = self.jobs[job_id] = self.jobs[job_id].evolve(**values)
        return job


class Part:
    def __init__(self, tables: Tables) -> None:
        self._t = tables


def counted(job: Job) -> Counted:
    return Counted(job.type, job.queue, job.state, job.runtime_seconds, job.wait_seconds)


def utc(at: T) -> T:
    """An aware time in UTC; a naive one is refused, as the SQL store refuses it."""
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError(f"naive datetime {at!r}: pass a timezone-aware time")
        return at.astimezone(UTC)
    return at


def stored(record: Record) -> Record:
    """A record as a ``job_events`` row hands it back: in UTC, its payload through JSON."""
    if isinstance(record, LogWritten):
        return dataclasses.replace(record, at=utc(record.at))
    return unmarshal(record.kind, utc(record.at), json_copy(record.marshal()))


def json_copy(value: Any) -> Any:
    """A copy of a JSON value, as a JSON column hands it back."""
    return None if value is None else json.loads(json.dumps(value))


def job_values(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - _WRITABLE
    if unknown:
        raise ValueError(f"not writable job fields: {sorted(unknown)}")
    return {name: _job_value(name, value) for name, value in values.items()}


def _job_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "state":
        return JobState(value)
    if name == "control":
        return Control(value)
    if isinstance(value, JobSpec):
        return JobSpec.from_dict(json_copy(value.to_dict()))
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict | list):
        return json_copy(value)
    return utc(value)


def run_value(name: str, value: Any) -> Any:
    if name == "state":
        return RunState(value)
    return json_copy(value) if isinstance(value, dict) else utc(value)


def new_job(job_id: int, new: NewJob, now: datetime, **columns: Any) -> Job:
    return Job(
        id=job_id, type=new.type, name=new.name, args=json_copy(new.args) or {},
        spec=JobSpec.from_dict(json_copy(new.spec.to_dict())), queue=new.queue,
        priority=new.priority, state=new.state, control=None, created_at=now, updated_at=now,
        run_at=utc(new.run_at), max_attempts=new.max_attempts,
        idempotency_key=new.idempotency_key, restarted_from=new.restarted_from, node=new.node,
        workflow_run=new.workflow_run, route=route_of(new.spec.tags),
    ).evolve(**columns)  # fmt: skip


def insert_job(t: Tables, job: Job, state: JobState) -> None:
    t.jobs[job.id] = job
    if job.idempotency_key is not None:
        t.keys[job.idempotency_key] = job.id
    t.add_event(job.id, JobCreated(at=job.created_at, state=state))
