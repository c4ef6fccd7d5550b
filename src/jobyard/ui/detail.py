"""What the job page shows of one job: its timeline, log tail, budgets and the buttons it offers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jobyard.events.records import FeedEvent, LogWritten, SlaBreached
from jobyard.models import EventKind, Job
from jobyard.node import Node
from jobyard.states import Control, Event, IllegalTransition, JobState, transition
from jobyard.units import duration, size

TAIL = 500  # log lines shown when the page opens; the full log is a download away
TIMELINE = 200  # state events shown
PAGE = 2000


@dataclass(frozen=True)
class Button:
    label: str
    method: str  # hx-post or hx-delete
    url: str
    then: str  # see data-then in live.js
    confirm: str | None = None
    style: str = ""


def buttons(job: Job) -> list[Button]:
    """The controls the job's state allows now (the server checks them again)."""
    url = f"/api/v1/jobs/{job.id}"
    found = []
    labels = {Event.START: "Start", Event.PAUSE: "Pause", Event.RESUME: "Resume"}
    for event, label in labels.items():
        if _allowed(job.state, event):
            found.append(Button(label, "hx-post", f"{url}/{event.value}", "refresh"))
    if _allowed(job.state, Event.KILL) and job.control is not Control.KILL:
        confirm = f"Kill job {job.id} ({job.type})?"
        found.append(Button("Kill", "hx-post", f"{url}/kill", "refresh", confirm, "danger"))
    if job.state.terminal and job.restarted_as is None:
        found.append(Button("Restart", "hx-post", f"{url}/restart", "job", None, "secondary"))
    if job.state.terminal and job.workflow_run is None:  # a run's jobs go with the run
        confirm = f"Remove job {job.id} and its history?"
        found.append(Button("Remove", "hx-delete", url, "/jobs", confirm, "danger outline"))
    return found


def _allowed(state: JobState, event: Event) -> bool:
    try:
        transition(state, event)
    except IllegalTransition:
        return False
    return True


def timeline(node: Node, job_id: int) -> list[FeedEvent]:
    """The job's newest state changes, budget breaches and workflow events (a job retried
    a hundred times has more than are shown), oldest first."""
    kinds = (EventKind.STATE.value, EventKind.SLA.value, EventKind.WORKFLOW.value)
    return node.store.events.feed(0, TIMELINE, kinds=kinds, job_id=job_id, newest=True)


def breaches(events: list[FeedEvent]) -> list[SlaBreached]:
    return [e.event.record for e in events if isinstance(e.event.record, SlaBreached)]


def log_tail(node: Node, job: Job) -> list[LogWritten]:
    """The last :data:`TAIL` lines (``log_lines`` may lag behind a running job: read on)."""
    tail: list[LogWritten] = []
    for lines in _pages(node, job.id, max(job.log_lines - TAIL, 0)):
        tail = (tail + lines)[-TAIL:]
    return tail


def _pages(node: Node, job_id: int, after: int) -> Iterator[list[LogWritten]]:
    for _ in range(20):  # a bound: a job that writes faster than this is read live
        lines = node.manager.logs(job_id, after, PAGE)
        yield lines
        if len(lines) < PAGE:
            return
        after = lines[-1].seq


def full_log(node: Node, job_id: int) -> Iterator[str]:
    """Every line, stderr and system lines marked, for a download."""
    after = 0
    while lines := node.manager.logs(job_id, after, PAGE):
        for line in lines:
            mark = "" if line.stream == "stdout" else f"[{line.stream}] "
            yield f"{mark}{line.line}\n"
        after = lines[-1].seq


def budgets(job: Job) -> list[tuple[str, Any]]:
    """The budgets watched, as (name, limit) pairs for people."""
    sla = job.spec.sla
    if sla is None:
        return []
    found: list[tuple[str, Any]] = []
    if sla.max_runtime is not None:
        found.append(("runtime", duration(sla.max_runtime)))
    if sla.max_output is not None:
        found.append(("output", size(sla.max_output)))
    if sla.max_data is not None:
        found.append((f"metric {sla.max_data[0]}", f"{sla.max_data[1]:g}"))
    if sla.expected:
        found.append(("expected runtime", f"{sla.factor:g} times the p95 of recent runs"))
    return found
