"""How the client follows a workflow run: its stream, else polls that back off.

The flows are driven by hand here: each effect they ask for is answered from a
script, and their waits are recorded, not slept.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobyard.client import calls
from jobyard.client.events import Event, parse_event
from jobyard.client.flow import Call, Emit, Next, Sleep
from jobyard.client.stream import StreamUnavailable

RUN: dict[str, Any] = {
    "id": 7,
    "workflow": "w",
    "state": "running",
    "nodes": {
        "a": {"job_id": 1, "state": "running", "attempt": 1, "restarted_from": None},
        "b": {"job_id": 2, "state": "waiting", "attempt": 0, "restarted_from": None},
    },
}


def run(state: str = "running", **nodes: tuple[int, str]) -> dict[str, Any]:
    """RUN in ``state``, with some nodes' (job id, state) changed."""
    changed = copy.deepcopy(RUN) | {"state": state}
    for name, (job_id, node_state) in nodes.items():
        changed["nodes"][name] |= {"job_id": job_id, "state": node_state}
    return changed


def node_event(node: str, job_id: int, state: str, kind: str = "workflow_node_state") -> Event:
    data = {"job_id": job_id, "state": state, "workflow_run": 7, "node": node}
    return parse_event(None, kind, data | {"at": "2026-01-01T00:00:00+00:00"})


class Script:
    """Answers a flow's effects: runs for its GETs, events (or an error) for its stream."""

    def __init__(self, runs: list[dict[str, Any]], events: list[Event | Exception]) -> None:
        self.runs = iter(runs)
        self.events = iter(events)
        self.sleeps: list[float] = []
        self.calls: list[str] = []
        self.result: Any = None

    def drive(self, flow: Iterator[Any]) -> list[Any]:
        emitted: list[Any] = []
        answer: Callable[[], Any] = lambda: None  # noqa: E731
        while True:
            try:
                try:
                    reply = answer()
                except Exception as exc:
                    effect = flow.throw(exc)
                else:
                    effect = flow.send(reply)
            except StopIteration as stop:
                self.result = stop.value
                return emitted
            answer = self.answer(effect, emitted)

    def answer(self, effect: Any, emitted: list[Any]) -> Callable[[], Any]:
        if isinstance(effect, Emit):
            emitted.append(effect.value)
            return lambda: None
        if isinstance(effect, Sleep):
            self.sleeps.append(round(effect.seconds, 3))
            return lambda: None
        if isinstance(effect, Call):
            self.calls.append(f"{effect.method} {effect.path}")
            return lambda: next(self.runs)
        assert isinstance(effect, Next)
        self.calls.append(f"stream {effect.stream.request(None).path}")  # type: ignore[arg-type]
        event = next(self.events, None)
        if isinstance(event, Exception):
            return lambda: _raise(event)
        return lambda: event


def _raise(exc: Exception) -> Any:
    raise exc


def test_a_run_follows_its_stream_and_is_read_anew_at_its_close() -> None:
    ended = run("failed", a=(1, "failed"), b=(2, "upstream_failed"))
    script = Script(
        [run(), ended],
        [
            node_event("a", 1, "running"),  # as it was: no change
            parse_event(None, "workflow_started", {"run_id": 7, "workflow": "w"}),
            node_event("b", 3, "queued", kind="job_created"),  # b's job restarted
            node_event("a", 1, "failed"),
            parse_event(None, "close", {"run_id": 7, "state": "failed"}),
        ],
    )
    seen = script.drive(calls.follow_run(7))
    assert seen == [run(), run(b=(3, "queued")), run(a=(1, "failed"), b=(3, "queued")), ended]
    assert script.calls == ["GET /api/v1/workflow-runs/7"] + [
        "stream /api/v1/workflow-runs/7/events"
    ] * 5 + ["GET /api/v1/workflow-runs/7"]
    assert script.sleeps == []


def test_a_run_that_is_not_running_is_told_once() -> None:
    script = Script([run("stopped")], [])
    assert script.drive(calls.follow_run(7)) == [run("stopped")]
    assert script.calls == ["GET /api/v1/workflow-runs/7"]


def test_without_its_stream_a_run_is_polled_less_often_while_nothing_changes() -> None:
    same = [run()] * 9
    moved = run(a=(1, "succeeded"), b=(2, "running"))
    ended = run("succeeded", a=(1, "succeeded"), b=(2, "succeeded"))
    script = Script([run(), *same, moved, ended], [StreamUnavailable(404)])
    assert script.drive(calls.follow_run(7)) == [run(), moved, ended]
    # 0.2 s, half as long again each time up to 2 s; 0.2 s again after a change
    assert script.sleeps == [0.2, 0.3, 0.45, 0.675, 1.013, 1.519, 2.0, 2.0, 2.0, 2.0, 0.2]


def test_waiting_for_a_run_returns_it_as_it_ended_or_times_out() -> None:
    ended = run("succeeded", a=(1, "succeeded"), b=(2, "succeeded"))
    script = Script([run(), ended], [StreamUnavailable(404)])
    assert script.drive(calls.wait_run(7, None)) == []  # it emits nothing: it returns the run
    assert script.result == ended
    stuck = Script([run()], [StreamUnavailable(404)])
    with pytest.raises(TimeoutError, match="the run did not end before the deadline"):
        stuck.drive(calls.wait_run(7, 0))
