"""The event records: one vocabulary, stored and sent exactly as clients know it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobyard.events.records import (
    RECORDS,
    FeedEvent,
    JobClaimed,
    JobCreated,
    JobEvent,
    JobHandedBack,
    JobPromoted,
    JobRescheduled,
    JobStateChanged,
    JobTerminated,
    LogWritten,
    MetricReported,
    NotificationAttempted,
    ProgressReported,
    Record,
    SlaBreached,
    WorkflowRunFinished,
    WorkflowRunReopened,
    WorkflowRunStarted,
    unmarshal,
)
from jobyard.models import RunState
from jobyard.states import JobState

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
GLOBAL_KINDS = {"state", "workflow", "sla", "notification"}  # the others are a job's own

# Each record and its stored payload (what a job's own stream sends after job_id and at).
STORED: list[tuple[Record, dict[str, Any]]] = [
    (JobCreated(at=T0, state=JobState.QUEUED), {"state": "queued", "event": "created"}),
    (JobPromoted(at=T0), {"state": "queued", "event": "promoted"}),
    (
        JobClaimed(at=T0, attempt=2, worker="w1"),
        {"state": "running", "attempt": 2, "worker": "w1"},
    ),
    (
        JobStateChanged(at=T0, state=JobState.QUEUED, previous=JobState.HELD),
        {"state": "queued", "previous": "held"},
    ),
    (JobStateChanged(at=T0, state=JobState.PAUSED), {"state": "paused"}),
    (
        JobStateChanged(at=T0, state=JobState.RUNNING, resumed=True),
        {"state": "running", "resumed": True},
    ),
    (
        JobRescheduled(
            at=T0,
            state=JobState.SCHEDULED,
            reason="exit_code",
            attempt=1,
            run_at=T1,
            exit_code=3,
            restart_count=0,
        ),
        {
            "state": "scheduled",
            "reason": "exit_code",
            "attempt": 1,
            "run_at": T1.isoformat(),
            "exit_code": 3,
            "restart_count": 0,
        },
    ),
    (
        JobHandedBack(at=T0, state=JobState.QUEUED, reason="draining", attempt=1, worker="w1"),
        {
            "state": "queued",
            "event": "handed_back",
            "reason": "draining",
            "attempt": 1,
            "worker": "w1",
        },
    ),
    (
        JobTerminated(at=T0, state=JobState.SUCCEEDED, attempt=1, exit_code=0, runtime_seconds=2.5),
        {"state": "succeeded", "attempt": 1, "exit_code": 0, "runtime_seconds": 2.5},
    ),
    (
        JobTerminated(
            at=T0, state=JobState.UPSTREAM_FAILED, reason="upstream_failed", error="job 1 failed"
        ),
        {"state": "upstream_failed", "reason": "upstream_failed", "error": "job 1 failed"},
    ),
    (
        LogWritten(at=T0, seq=7, stream="stderr", line="oops"),
        {"seq": 7, "stream": "stderr", "line": "oops"},
    ),
    (
        ProgressReported(at=T0, fraction=None, message="warming up"),
        {"fraction": None, "message": "warming up"},
    ),
    (MetricReported(at=T0, name="rows", value=1200), {"name": "rows", "value": 1200}),
    (
        SlaBreached(
            at=T0, budget="max_data", limit=10, value=12, action="kill", metric="rows", attempt=1
        ),
        {
            "budget": "max_data",
            "limit": 10,
            "value": 12,
            "action": "kill",
            "metric": "rows",
            "attempt": 1,
        },
    ),
    (
        WorkflowRunStarted(at=T0, run_id=4, workflow="nightly", trigger="api"),
        {"event": "workflow_started", "run_id": 4, "workflow": "nightly", "trigger": "api"},
    ),
    (
        WorkflowRunFinished(
            at=T0, run_id=4, workflow="nightly", state=RunState.FAILED, failed_nodes=("load",)
        ),
        {
            "event": "workflow_finished",
            "run_id": 4,
            "workflow": "nightly",
            "state": "failed",
            "failed_nodes": ["load"],
        },
    ),
    (
        WorkflowRunFinished(at=T0, run_id=4, workflow="nightly", state=RunState.SUCCEEDED),
        {"event": "workflow_finished", "run_id": 4, "workflow": "nightly", "state": "succeeded"},
    ),
    (
        WorkflowRunReopened(at=T0, run_id=4, workflow="nightly"),
        {"event": "workflow_reopened", "run_id": 4, "workflow": "nightly", "state": "running"},
    ),
    (
        NotificationAttempted(
            at=T0,
            notification_id=9,
            event="failed",
            channel="mail",
            status="pending",
            attempts=1,
            error="refused",
            next_attempt_at=T1,
        ),
        {
            "notification_id": 9,
            "event": "failed",
            "channel": "mail",
            "status": "pending",
            "attempts": 1,
            "error": "refused",
            "next_attempt_at": T1.isoformat(),
        },
    ),
]


def test_every_record_has_an_example() -> None:
    assert {type(record) for record, _ in STORED} == set(RECORDS)


@pytest.mark.parametrize(("record", "payload"), STORED, ids=lambda v: type(v).__name__)
def test_a_record_is_stored_as_the_payload_clients_know(
    record: Record, payload: dict[str, Any]
) -> None:
    assert record.marshal() == payload


@pytest.mark.parametrize(("record", "payload"), STORED, ids=lambda v: type(v).__name__)
def test_a_record_reads_back_equal(record: Record, payload: dict[str, Any]) -> None:
    assert unmarshal(record.kind.value, record.at, record.marshal()) == record
    assert type(record).unmarshal(record.at, payload) == record


def test_record_names_are_past_tense_and_unique() -> None:
    names = [cls.__name__ for cls in RECORDS]
    assert len(set(names)) == len(names)
    for name in names:
        words = re.findall(r"[A-Z][a-z]*", name)
        assert any(w.endswith("ed") or w == "Written" for w in words[1:]), name
    markers = [cls.marker for cls in RECORDS if cls.marker is not None]
    assert len(set(markers)) == len(markers)


def doc_row(path: str) -> str:
    [row] = [line for line in API_DOC.read_text().splitlines() if line.startswith(f"| `{path}")]
    return row


def test_every_stream_name_is_documented() -> None:
    job_stream = doc_row("GET /api/v1/jobs/{id}/events")
    for kind in {cls.kind.value for cls in RECORDS}:
        assert f"`{kind}` (" in job_stream, kind
    global_stream = doc_row("GET /api/v1/events")
    names = {cls.sse_name for cls in RECORDS if cls.kind.value in GLOBAL_KINDS}
    names |= {cls.node_name for cls in RECORDS if cls.node_name is not None}
    assert names >= {"job_created", "job_state", "job_terminated", "workflow_node_state"}
    for name in names:
        assert f"`{name}`" in global_stream, name


def feed(record: Record, workflow_run: int | None = None) -> FeedEvent:
    node = None if workflow_run is None else "load"
    return FeedEvent(JobEvent(31, 5, record), "etl", "default", workflow_run, node)


def test_the_job_stream_sends_the_stored_payload_named_by_kind() -> None:
    item = feed(JobHandedBack(at=T0, state=JobState.QUEUED, reason="draining", attempt=1))
    assert item.event.kind.value == "state"
    assert item.event.marshal() == {
        "job_id": 5,
        "at": T0.isoformat(),
        "state": "queued",
        "reason": "draining",
        "attempt": 1,
        "event": "handed_back",
    }
    line = feed(LogWritten(at=T0, seq=3, stream="stdout", line="hi")).event.marshal()
    assert line == {"job_id": 5, "at": T0.isoformat(), "seq": 3, "stream": "stdout", "line": "hi"}


@pytest.mark.parametrize(
    ("record", "workflow_run", "name"),
    [
        (JobCreated(at=T0, state=JobState.QUEUED), None, "job_created"),
        (JobCreated(at=T0, state=JobState.WAITING), 2, "job_created"),
        (JobClaimed(at=T0, attempt=1, worker="w1"), None, "job_state"),
        (JobPromoted(at=T0), 2, "workflow_node_state"),
        (JobTerminated(at=T0, state=JobState.KILLED), None, "job_terminated"),
        (JobTerminated(at=T0, state=JobState.FAILED), 2, "workflow_node_state"),
        (WorkflowRunStarted(at=T0, run_id=2, workflow="w", trigger="api"), 2, "workflow_started"),
        (WorkflowRunReopened(at=T0, run_id=2, workflow="w"), 2, "workflow_reopened"),
        (STORED[-1][0], None, "notification"),
        (STORED[13][0], None, "sla_breach"),
    ],
)
def test_the_global_stream_names(record: Record, workflow_run: int | None, name: str) -> None:
    assert feed(record, workflow_run).sse_name == name


def test_the_global_stream_drops_the_marker_and_adds_the_job() -> None:
    created = feed(JobCreated(at=T0, state=JobState.WAITING), workflow_run=2).marshal()
    assert created == {
        "job_id": 5,
        "type": "etl",
        "queue": "default",
        "at": T0.isoformat(),
        "state": "waiting",
        "workflow_run": 2,
        "node": "load",
    }


def test_a_notification_on_the_global_stream_keeps_its_event() -> None:
    record, stored = STORED[-1]
    assert feed(record).marshal() == {
        "job_id": 5,
        "type": "etl",
        "queue": "default",
        "at": T0.isoformat(),
        **stored,
    }
