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

LOG_TAIL = 20
"""How many of the last log lines a message carries."""
MAX_LINE = 500
"""Longer log lines are cut to this many characters."""

SUBJECT_PREFIX = "[jobyard]"
_MAX_SUBJECT = 160
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
    """The message for ``notice``; ``delivery_id`` names this delivery to its receiver."""
    summary = _summary(notice)
    subject = _one_line(f"{SUBJECT_PREFIX} {summary}")
    return Message(
        event=notice["event"],
        delivery_id=delivery_id,
        subject=subject[:_MAX_SUBJECT],
        text=_text(notice, summary),
        payload=_payload(notice, delivery_id, summary),
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
        return f"{what} breached its SLA: {_sla_line(notice['sla'])}"
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


def _sla_line(sla: SlaInfo) -> str:
    budget, value, limit = sla["budget"], sla["value"], sla["limit"]
    if budget == "max_output":
        return f"{budget} {human_size(value)} > {human_size(limit)}"
    if budget == "max_data":
        return f"{sla.get('metric') or budget} {value:g} > {limit:g}"
    return f"{budget} {human_duration(value)} > {human_duration(limit)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())  # no line breaks in a header


# -- plain text ---------------------------------------------------------------------
def _text(notice: Notice, summary: str) -> str:
    lines = [summary[:1].upper() + summary[1:] + ".", ""]
    if "job" in notice:
        lines += _job_lines(notice["job"])
    if "run" in notice:
        lines += _run_lines(notice["run"])
    if "sla" in notice:
        killed = " (the job is killed)" if notice["sla"].get("action") == "kill" else ""
        lines += [f"{'SLA:':<11}{_sla_line(notice['sla'])}{killed}"]
    if notice.get("at"):
        lines += [f"{'At:':<11}{notice.get('at')}"]
    tail = _tail(notice.get("log_tail") or [])
    if tail:
        lines += ["", f"Last {len(tail)} log lines:", *(f"  {line}" for line in tail)]
    if notice.get("link"):
        lines += ["", str(notice.get("link"))]
    return "\n".join(lines) + "\n"


def _job_lines(job: JobInfo) -> list[str]:
    node = job.get("node")
    workflow = job.get("workflow")
    rows = [
        ("Job", f"{job['id']}" + (f" {job.get('name')}" if job.get("name") else "")),
        ("Type", job["type"]),
        ("State", job["state"]),
        ("Exit code", job.get("exit_code")),
        ("Runtime", None if job.get("runtime") is None else human_duration(job.get("runtime"))),
        ("Reason", job.get("reason")),
        ("Workflow", f"{workflow} (node {node})" if workflow and node else workflow),
        ("Queue", job.get("queue")),
    ]
    lines = [f"{label + ':':<11}{value}" for label, value in rows if value is not None]
    error = (job.get("error") or "").rstrip()
    if error:
        first, *rest = error.splitlines()
        lines += [f"{'Error:':<11}{first}", *(f"{'':<11}{line}" for line in rest)]
    return lines


def _run_lines(run: RunInfo) -> list[str]:
    rows = [
        ("Run", run["id"]),
        ("Workflow", run["workflow"]),
        ("State", run["state"]),
        ("Failed", ", ".join(run.get("failed_nodes") or []) or None),
        ("Runtime", None if run.get("runtime") is None else human_duration(run.get("runtime"))),
    ]
    return [f"{label + ':':<11}{value}" for label, value in rows if value is not None]


def human_duration(seconds: float | None) -> str:
    """``45.2 s``, ``3m 05s``, ``2h 00m 09s``, ``1d 4h 00m``."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h {minutes:02d}m"
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def human_size(count: float) -> str:
    """``512 B``, ``612.0 MB``: decimal units, as budgets like ``500MB`` are written."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(count) < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


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
