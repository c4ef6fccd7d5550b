"""Typed events of the API's streams: one small frozen class per kind of message.

A job's own stream (``/jobs/{id}/events``, ``/jobs/{id}/logs?follow=true``)
names its messages by the stored kind (``state``, ``log``, ``progress``,
``metric``, ``sla``, ``workflow``, ``notification``), then ``close``; the
global stream (``/events``) by what happened (``job_created``, ``job_state``,
``job_terminated``, ``workflow_node_state``, ``sla_breach``,
``workflow_started`` …). Either stream may send ``reset``. :func:`parse_event`
picks the class by that name (the union :data:`AnyEvent`); a name this client
does not know stays a plain :class:`Event`. Every event keeps its raw JSON in
``data`` and its SSE name in ``kind``, so code written against dicts still works.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobyard.client.values import TERMINAL_STATES, parse_time

_TIMES = frozenset({"at", "run_at", "next_attempt_at"})


@dataclass(frozen=True)
class Event:
    """One event of a stream: ``kind`` is its SSE event type, ``data`` its raw JSON.

    ``id`` orders events (it is ``None`` on ``close`` and on events made up by
    polling when the server cannot stream). ``at`` is when it happened.
    """

    id: int | None
    kind: str
    data: dict[str, Any]
    at: datetime | None = None

    @property
    def job_id(self) -> int | None:
        job_id = self.data.get("job_id")
        return job_id if isinstance(job_id, int) else None


@dataclass(frozen=True, kw_only=True)
class StateEvent(Event):
    """A job's state as it became (``state``; on the global stream ``job_created``,
    ``job_state``, ``job_terminated`` or ``workflow_node_state``).

    ``marker`` tells apart changes of the same state (``created``, ``promoted``,
    ``handed_back``); the other facts are set when they apply. On the global
    stream ``type``, ``queue`` (and for a workflow node ``workflow_run``, ``node``)
    say which job it is.
    """

    state: str
    marker: str | None = None
    reason: str | None = None
    previous: str | None = None
    attempt: int | None = None
    worker: str | None = None
    exit_code: int | None = None
    error: str | None = None
    run_at: datetime | None = None
    runtime_seconds: float | None = None
    restart_count: int | None = None
    resumed: bool | None = None
    type: str | None = None
    queue: str | None = None
    workflow_run: int | None = None
    node: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True, kw_only=True)
class LogEvent(Event):
    """One line of a job's output; ``stream`` is stdout, stderr or system."""

    seq: int
    stream: str = "stdout"
    line: str


@dataclass(frozen=True, kw_only=True)
class ProgressEvent(Event):
    """How far a job is: ``fraction`` from 0 to 1 and/or a message."""

    fraction: float | None = None
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class MetricEvent(Event):
    """A metric the job reported (the last value of a name counts)."""

    name: str
    value: float


@dataclass(frozen=True, kw_only=True)
class SlaEvent(Event):
    """A running job went over a budget (``sla``; ``sla_breach`` on the global stream)."""

    budget: str
    limit: float
    value: float
    action: str
    metric: str | None = None
    attempt: int | None = None


@dataclass(frozen=True, kw_only=True)
class WorkflowEvent(Event):
    """A workflow run started, finished or reopened (``workflow_started`` …)."""

    run_id: int
    workflow: str
    state: str | None = None
    trigger: str | None = None
    failed_nodes: list[str] | None = None
    marker: str | None = None


@dataclass(frozen=True, kw_only=True)
class NotificationEvent(Event):
    """A notification's delivery was tried; ``event`` is what it notified of."""

    notification_id: int
    event: str
    channel: str
    status: str
    attempts: int
    error: str | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class CloseEvent(Event):
    """The job's stream ends: the job has ended (``state``; ``None``: it was removed)."""

    state: str | None = None


@dataclass(frozen=True, kw_only=True)
class ResetEvent(Event):
    """Events after the stream's place were removed by retention: reload.

    ``pruned_through`` is the newest removed id; a global stream goes on from
    ``resume_from``; a job's stream says the job's ``state``.
    """

    reason: str = "pruned"
    pruned_through: int | None = None
    resume_from: int | None = None
    state: str | None = None


AnyEvent = (
    StateEvent
    | LogEvent
    | ProgressEvent
    | MetricEvent
    | SlaEvent
    | WorkflowEvent
    | NotificationEvent
    | CloseEvent
    | ResetEvent
    | Event
)

EVENT_CLASSES: dict[str, type[Event]] = {
    **dict.fromkeys(
        ("state", "job_created", "job_state", "job_terminated", "workflow_node_state"),
        StateEvent,
    ),
    "log": LogEvent,
    "progress": ProgressEvent,
    "metric": MetricEvent,
    **dict.fromkeys(("sla", "sla_breach"), SlaEvent),
    **dict.fromkeys(
        ("workflow", "workflow_started", "workflow_finished", "workflow_reopened"),
        WorkflowEvent,
    ),
    "notification": NotificationEvent,
    "close": CloseEvent,
    "reset": ResetEvent,
}
# A stored payload's ``"event"`` marker, kept apart from a notification's own ``event``.
_MARKED = (StateEvent, WorkflowEvent)


def parse_event(event_id: int | None, kind: str, data: Mapping[str, Any]) -> Event:
    """The typed event of an SSE message named ``kind`` with the JSON ``data``.

    A message whose data lacks what its class needs (a newer or older server)
    stays a plain :class:`Event` rather than failing the stream.
    """
    raw = dict(data)
    cls = EVENT_CLASSES.get(kind, Event)
    facts = _facts(cls, raw)
    try:
        return cls(id=event_id, kind=kind, data=raw, at=parse_time(raw.get("at")), **facts)
    except TypeError:  # a required fact is missing
        return Event(id=event_id, kind=kind, data=raw, at=parse_time(raw.get("at")))


def _facts(cls: type[Event], raw: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)} - {"id", "kind", "data", "at"}
    facts = {name: raw[name] for name in names if name in raw and name != "marker"}
    if cls in _MARKED and isinstance(raw.get("event"), str):
        facts["marker"] = raw["event"]
    return {k: parse_time(v) if k in _TIMES else v for k, v in facts.items()}
