"""Printing a job's log lines and events as plain text (or JSON lines) while following it."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from jobyard.cli.common import print_json_line
from jobyard.client.models import FAILED_STATES, Event, JobInfo, LogLine
from jobyard.units import duration


def print_line(job_id: int, line: LogLine, json_lines: bool = False) -> None:
    """stdout lines on stdout, stderr lines on stderr, the worker's own notes marked."""
    if json_lines:
        print_json_line(line)
    elif line.stream == "stdout":
        _write(sys.stdout, line.line)
    elif line.stream == "stderr":
        _write(sys.stderr, line.line)
    else:
        note(job_id, line.line)


def note(job_id: int, text: str) -> None:
    """A line about the job (not from it), on stderr."""
    _write(sys.stderr, f"[job {job_id}] {text}")


def closed_state(data: Mapping[str, Any]) -> str | None:
    """The job's state a stream's ``close`` says; None: there is no job (it was removed)."""
    state = data.get("state")
    return None if state is None else str(state)


def print_events(events: Iterable[Event], json_lines: bool = False) -> str | None:
    """Print each event until ``close``; returns the job's final state (None: removed)."""
    final: str | None = None
    for event in events:
        if event.kind == "close":
            final = closed_state(event.data)
        if json_lines:
            print_json_line({"id": event.id, "event": event.kind, "data": event.data})
        else:
            _print_event(event)
    return final


def _print_event(event: Event) -> None:
    job_id = event.job_id or 0
    data = event.data
    if event.kind == "log":
        print_line(job_id, LogLine.from_dict(data))
    elif event.kind == "state":
        note(job_id, state_summary(data))
    elif event.kind == "progress":
        fraction = data.get("fraction")
        shown = f"{fraction:.0%}" if isinstance(fraction, int | float) else ""
        note(job_id, " ".join(p for p in ("progress", shown, data.get("message") or "") if p))
    elif event.kind == "metric":
        note(job_id, f"metric {data.get('name')} = {data.get('value')}")


def state_summary(data: dict[str, object]) -> str:
    """``running (attempt 2)``, ``failed: exit code 3``, ``failed: timeout``…"""
    text = str(data.get("state"))
    attempt = data.get("attempt")
    if isinstance(attempt, int) and attempt > 1:
        text += f" (attempt {attempt})"
    state, reason, code = data.get("state"), data.get("reason"), data.get("exit_code")
    if state in FAILED_STATES and code not in (None, 0):
        text += f": exit code {code}"
    elif state in FAILED_STATES and reason and reason != state:
        text += f": {reason}"
    return text


def job_summary(job: JobInfo) -> str:
    """One line on an ended (or not) job: state, exit code, error and runtime."""
    text = f"job {job.id} ({job.type}) {job.state}"
    if job.exit_code is not None:
        text += f", exit code {job.exit_code}"
    said = job.error or job.reason
    if job.failed and said and said != f"exit code {job.exit_code}":  # said once already
        text += f": {said}"
    if job.resources.runtime_seconds is not None:
        text += f", ran {duration(job.resources.runtime_seconds)}"
    return text


def _write(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()
