"""The client's typed events against the server's vocabulary (events/records.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from jobyard.client.events import (
    EVENT_CLASSES,
    CloseEvent,
    Event,
    LogEvent,
    NotificationEvent,
    ResetEvent,
    StateEvent,
    WorkflowEvent,
    parse_event,
)
from jobyard.events.records import RECORDS, Record

AT = "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize("record", RECORDS, ids=[r.__name__ for r in RECORDS])
def test_every_record_has_a_typed_event_with_its_facts(record: type[Record]) -> None:
    names = {record.kind.value, record.sse_name} | ({record.node_name} - {None})
    for name in names:
        assert name in EVENT_CLASSES, f"no client event class for {name!r}"
        fields = {f.name for f in dataclasses.fields(EVENT_CLASSES[name])}
        facts = {f.name for f in dataclasses.fields(record)}
        assert facts <= fields, f"{name}: the client lacks {sorted(facts - fields)}"


def test_a_state_event_is_typed_and_keeps_its_json() -> None:
    data = {"job_id": 4, "at": AT, "state": "running", "attempt": 2, "worker": "w1"}
    event = parse_event(17, "state", data | {"event": "created"})
    assert isinstance(event, StateEvent)
    assert (event.id, event.job_id, event.state, event.attempt) == (17, 4, "running", 2)
    assert event.marker == "created"
    assert event.at == datetime(2026, 1, 1, tzinfo=UTC)
    assert event.data["worker"] == "w1"
    assert not event.terminal


def test_each_name_picks_its_class() -> None:
    log = parse_event(1, "log", {"job_id": 1, "at": AT, "seq": 3, "stream": "stderr", "line": "x"})
    assert isinstance(log, LogEvent)
    assert (log.seq, log.stream, log.line) == (3, "stderr", "x")
    finished = {"run_id": 2, "workflow": "nightly", "state": "failed", "event": "workflow_finished"}
    workflow = parse_event(2, "workflow_finished", finished | {"failed_nodes": ["a"]})
    assert isinstance(workflow, WorkflowEvent)
    assert (workflow.marker, workflow.failed_nodes) == ("workflow_finished", ["a"])
    sent = {"notification_id": 5, "event": "failed", "channel": "chat", "status": "sent"}
    notification = parse_event(3, "notification", sent | {"attempts": 1})
    assert isinstance(notification, NotificationEvent)
    assert notification.event == "failed"  # its own field, not a marker
    close = parse_event(None, "close", {"job_id": 1, "state": "killed"})
    assert isinstance(close, CloseEvent)
    assert close.state == "killed"
    reset = parse_event(9, "reset", {"reason": "pruned", "pruned_through": 9, "resume_from": 9})
    assert isinstance(reset, ResetEvent)
    assert reset.resume_from == 9


def test_an_unknown_or_incomplete_message_stays_a_plain_event() -> None:
    unknown = parse_event(1, "something_new", {"x": 1})
    assert type(unknown) is Event
    assert unknown.data == {"x": 1}
    incomplete = parse_event(2, "log", {"job_id": 1})  # no seq, no line
    assert type(incomplete) is Event
    assert incomplete.kind == "log"
