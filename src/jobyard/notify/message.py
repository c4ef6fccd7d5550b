"""What a notification says: one :class:`Message` rendered from plain data.

The outbox builds a :class:`Notice` (JSON-able: it can be stored as is) and calls
:func:`render` once per delivery. The same :class:`Message` serves every channel:
email uses ``subject``, ``text`` and ``to``; a webhook posts :meth:`Message.body`,
the JSON of ``payload``, whose keys are always all present (``null`` when unknown):

``event``, ``delivery``, ``at``, ``summary``, ``link``, ``log_tail`` and
``job`` (``id``, ``type``, ``name``, ``state``, ``exit_code``, ``runtime`` in seconds,
``error``, ``reason``, ``workflow``, ``node``, ``queue``), ``run`` (``id``,
``workflow``, ``state``, ``failed_nodes``, ``runtime``), ``sla`` (``budget``,
``limit``, ``value``, ``metric``, ``action``); ``job``, ``run`` and ``sla`` are
``null`` when the event has none. ``docs/notifications.md`` shows an example.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Required, TypedDict

from jobyard.notify import mail
from jobyard.notify.jinja import sla_line

LOG_TAIL = 20
"""How many of the last log lines a message carries."""
MAX_LINE = 500
"""Longer log lines are cut to this many characters."""

_JOB_KEYS = (
    *("id", "type", "name", "state", "exit_code", "runtime"),
    *("error", "reason", "workflow", "node", "queue"),
)
_RUN_KEYS = ("id", "workflow", "state", "failed_nodes", "runtime")
_SLA_KEYS = ("budget", "limit", "value", "metric", "action")


class JobInfo(TypedDict, total=False):
    """The job an event is about; ``runtime`` is in seconds."""

    id: Required[int]
    type: Required[str]
    state: Required[str]
    name: str | None
    exit_code: int | None
    runtime: float | None
    error: str | None
    reason: str | None
    workflow: str | None
    node: str | None
    queue: str | None


class RunInfo(TypedDict, total=False):
    """The workflow run of a ``workflow_*`` event."""

    id: Required[int]
    workflow: Required[str]
    state: Required[str]
    failed_nodes: list[str]
    runtime: float | None


class SlaInfo(TypedDict, total=False):
    """The budget an ``sla_breach`` crossed (``sla.Breach.to_dict()``): ``max_runtime`` and
    ``expected`` in seconds, ``max_output`` in bytes, ``max_data`` in units of ``metric``;
    ``action`` is ``notify`` or ``kill``."""

    budget: Required[str]
    limit: Required[float]
    value: Required[float]
    metric: str | None
    action: str | None


class Notice(TypedDict, total=False):
    """Everything a message is rendered from; ``at`` is an ISO 8601 time of the event."""

    event: Required[str]
    job: JobInfo
    run: RunInfo
    sla: SlaInfo
    log_tail: list[str]
    link: str | None
    at: str | None


@dataclass(frozen=True)
class Message:
    """A notification ready to send: ``to`` matters for email only."""

    event: str
    delivery_id: str
    subject: str
    text: str
    payload: Mapping[str, Any]
    to: tuple[str, ...] = ()

    def body(self) -> bytes:
        """The webhook body: compact UTF-8 JSON of ``payload``, the bytes that are signed."""
        return json.dumps(self.payload, ensure_ascii=False, separators=(",", ":")).encode()


def render(notice: Notice, *, delivery_id: str, to: Sequence[str] = ()) -> Message:
    """The message for ``notice``; ``delivery_id`` names this delivery to its receiver.

    ``subject`` and ``text`` are the shipped email templates' (:mod:`.mail`): what every
    template sees as ``subject`` and ``text``, and what an email channel without templates
    of its own sends."""
    payload = _payload(notice, delivery_id, _summary(notice))
    email = mail.render(mail.shipped(), payload)
    return Message(
        event=notice["event"],
        delivery_id=delivery_id,
        subject=email.subject,
        text=email.text,
        payload=payload,
        to=tuple(to),
    )


# -- summary ------------------------------------------------------------------------
def _summary(notice: Notice) -> str:
    """One line: ``job 42 (etl) failed: exit code 3``, ``workflow nightly run 7 failed``."""
    event, job, run = notice["event"], notice.get("job"), notice.get("run")
    if run is not None and (job is None or event.startswith("workflow_")):
        what = f"workflow {run['workflow']} run {run['id']}"
        failed = run.get("failed_nodes") or []
        if event == "workflow_failed":
            return f"{what} failed" + (f": {', '.join(failed)}" if failed else "")
        return f"{what} {_past(event.removeprefix('workflow_'))}"
    if job is None:
        return event.replace("_", " ")
    what = f"job {job['id']} ({job['type']})"
    if event == "sla_breach" and "sla" in notice:
        return f"{what} breached its SLA: {sla_line(notice['sla'])}"
    if event == "upstream_failed":
        return f"{what} did not run: a dependency failed"
    if event == "worker_lost":
        return f"{what} lost its worker"
    if event == "failed":
        return f"{what} failed" + (f": {_why(job)}" if _why(job) else "")
    return f"{what} {_past(event)}"


def _past(event: str) -> str:
    return event.replace("_", " ")


def _why(job: JobInfo) -> str:
    if job.get("exit_code") is not None:
        return f"exit code {job.get('exit_code')}"
    first = (job.get("error") or "").strip().splitlines()[:1]
    return first[0] if first else (job.get("reason") or "").replace("_", " ")


# -- JSON -----------------------------------------------------------------------------
def _payload(notice: Notice, delivery_id: str, summary: str) -> dict[str, Any]:
    return {
        "event": notice["event"],
        "delivery": delivery_id,
        "at": notice.get("at"),
        "summary": summary,
        "link": notice.get("link"),
        "job": _keys(notice.get("job"), _JOB_KEYS),
        "run": _keys(notice.get("run"), _RUN_KEYS),
        "sla": _keys(notice.get("sla"), _SLA_KEYS),
        "log_tail": _tail(notice.get("log_tail") or []),
    }


def _tail(lines: Sequence[str]) -> list[str]:
    return [line[:MAX_LINE] for line in lines[-LOG_TAIL:]]


def _keys(data: Mapping[str, Any] | None, keys: Sequence[str]) -> dict[str, Any] | None:
    return None if data is None else {key: data.get(key) for key in keys}
