"""How the client follows a workflow run: its stream, else polls that back off.

The flows are driven by hand here: each effect they ask for is answered from a
script, and their waits are recorded, not slept.
"""

from __future__ import annotations

import copy
import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
from rich.console import Console
from rich.progress import Progress, TaskID

from jobyard.cli import progress
from jobyard.client import RunNodes, calls
from jobyard.client.errors import ServerUnreachable
from jobyard.client.events import Event, parse_event
from jobyard.client.flow import Call, Emit, Next, Sleep
from jobyard.client.stream import StreamReset, StreamUnavailable

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
        self.places: list[int | None] = []  # where each read of the stream asked to start
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
            answer = next(self.runs)  # an error: the request raised it
            return (lambda: _raise(answer)) if isinstance(answer, Exception) else lambda: answer
        assert isinstance(effect, Next)
        self.places.append(effect.stream.last_event_id)
        self.calls.append(f"stream {effect.stream.request(None).path}")  # type: ignore[arg-type]
        event = next(self.events, None)
        if isinstance(event, Exception):
            return lambda: _raise(event)
        return lambda: event


def _raise(exc: Exception) -> Any:
    raise exc


def test_the_read_after_the_close_waits_out_a_server_restarting() -> None:
    """A server that stops closes its streams first: the read after the close may find
    it gone for the seconds its restart takes, and is tried again as a stream is."""
    ended = run("succeeded", a=(1, "succeeded"), b=(2, "succeeded"))
    gone = ServerUnreachable("cannot reach http://jobyard: connection refused")
    script = Script(
        [run(), gone, gone, ended],
        [parse_event(None, "close", {"run_id": 7, "state": "succeeded"})],
    )
    assert script.drive(calls.follow_run(7))[-1] == ended
    assert script.sleeps == [0.5, 1.0]
    job = {"id": 1, "type": "t", "state": "running"}
    waited = Script(
        [job, gone, job | {"state": "succeeded"}],
        [parse_event(None, "close", {"state": "succeeded"})],
    )
    waited.drive(calls.wait(1, None, 1.0))
    assert waited.result.state == "succeeded"
    assert waited.sleeps == [0.5]
    never = Script([run()] + [gone] * 6, [parse_event(None, "close", {"run_id": 7})])
    with pytest.raises(ServerUnreachable):  # not for ever: about as long as a stream tries
        never.drive(calls.follow_run(7))
    assert never.sleeps == list(calls.REREAD_WAITS)


def test_a_run_follows_its_stream_and_is_read_anew_at_its_close() -> None:
    ended = run("failed", a=(1, "failed"), b=(2, "upstream_failed"))
    script = Script(
        [run(), ended],
        [
            node_event("a", 1, "running"),  # as it was: no change
            parse_event(None, "workflow_started", {"run_id": 7, "workflow": "w"}),
            node_event("b", 3, "queued", kind="job_created"),  # b's job restarted
            node_event("a", 1, "failed"),
            # The run's end, stored with b's job: b's state is not the run's.
            node_event("b", 3, "failed", kind="workflow_finished"),
            parse_event(None, "close", {"run_id": 7, "state": "failed"}),
        ],
    )
    seen = script.drive(calls.follow_run(7))
    assert seen == [run(), run(b=(3, "queued")), run(a=(1, "failed"), b=(3, "queued")), ended]
    assert script.calls == ["GET /api/v1/workflow-runs/7"] + [
        "stream /api/v1/workflow-runs/7/events"
    ] * 6 + ["GET /api/v1/workflow-runs/7"]
    assert script.sleeps == []


def test_the_stream_replays_the_run_from_its_start_and_tells_only_what_the_read_did_not() -> None:
    """A stream opened "from now" after the read missed the changes in between (a node
    seen running while the nodes after it had ended). Replayed from the run's first
    event, the changes up to what the read showed are passed over, none shown twice or
    backwards, and the later ones told in order."""
    read = run(a=(1, "succeeded"), b=(2, "running"))
    ended = run("succeeded", a=(1, "succeeded"), b=(2, "succeeded"))
    script = Script(
        [read, ended],
        [
            node_event("a", 1, "queued", kind="job_created"),
            node_event("b", 2, "waiting", kind="job_created"),
            node_event("a", 1, "running"),
            node_event("a", 1, "succeeded"),  # as read: a's next change is new
            node_event("b", 2, "queued"),
            node_event("b", 2, "running"),  # as read
            node_event("b", 2, "succeeded"),  # after the read
            parse_event(None, "close", {"run_id": 7, "state": "succeeded"}),
        ],
    )
    seen = script.drive(calls.follow_run(7))
    assert seen == [read, run(a=(1, "succeeded"), b=(2, "succeeded")), ended]
    assert set(script.places) == {0}  # from the run's first event


def test_a_node_s_retry_shows_the_attempt_it_is_at() -> None:
    def on(state: str, attempt: int) -> Event:
        return parse_event(
            None, "workflow_node_state", node_event("a", 1, state).data | {"attempt": attempt}
        )

    ended = run("succeeded", a=(1, "succeeded"), b=(2, "succeeded"))
    script = Script(
        [run(), ended],
        [
            on("running", 1),  # as read
            on("scheduled", 1),  # failed, to be retried
            on("running", 2),
            parse_event(None, "close", {"run_id": 7}),
        ],
    )
    seen = script.drive(calls.follow_run(7))
    assert [(r["nodes"]["a"]["state"], r["nodes"]["a"]["attempt"]) for r in seen[:3]] == [
        ("running", 1),
        ("scheduled", 1),
        ("running", 2),  # it said attempt 1 until the run was read again at its end
    ]


def test_a_replayed_retry_is_passed_over_up_to_the_attempt_the_read_showed() -> None:
    """Read running on its second attempt: the first attempt's running is not the read's,
    nor are the retry's states after it."""
    read = run(b=(2, "running"))
    read["nodes"]["b"]["attempt"] = 2
    ended = run("succeeded", a=(1, "succeeded"), b=(2, "succeeded"))

    def on(state: str, attempt: int | None, kind: str = "workflow_node_state") -> Event:
        event = node_event("b", 2, state, kind=kind)
        if attempt is not None:
            event = parse_event(None, kind, event.data | {"attempt": attempt})
        return event

    script = Script(
        [read, ended],
        [
            on("waiting", None, kind="job_created"),
            on("running", 1),
            on("scheduled", 1),  # retried
            on("queued", None),
            on("running", 2),  # as read
            on("succeeded", 2),
            parse_event(None, "close", {"run_id": 7, "state": "succeeded"}),
        ],
    )
    seen = script.drive(calls.follow_run(7))
    assert [node["b"]["state"] for node in (r["nodes"] for r in seen)] == [
        "running",
        "succeeded",
        "succeeded",
    ]


def test_a_run_that_is_not_running_is_told_once() -> None:
    script = Script([run("stopped")], [])
    assert script.drive(calls.follow_run(7)) == [run("stopped")]
    assert script.calls == ["GET /api/v1/workflow-runs/7"]


def test_a_reset_reads_the_run_anew_and_follows_on_from_the_resets_place() -> None:
    """Retention removed events the stream would have resumed from: what was built from
    it may be stale, so the run is read again, and the stream reopened past the gap."""
    reloaded = run(a=(1, "succeeded"), b=(2, "running"))
    ended = run("succeeded", a=(1, "succeeded"), b=(2, "succeeded"))
    reset = parse_event(41, "reset", {"reason": "pruned", "pruned_through": 40})
    script = Script(
        [run(), reloaded, ended],
        [StreamReset(reset), node_event("b", 2, "succeeded"), parse_event(None, "close", {})],
    )
    seen = script.drive(calls.follow_run(7))
    assert seen == [run(), reloaded, run(a=(1, "succeeded"), b=(2, "succeeded")), ended]
    assert script.places == [0, 41, 41]  # the reopened stream resumes from the reset's id


def test_a_reset_of_a_run_that_has_ended_ends_the_following_with_the_run_read_anew() -> None:
    stopped = run("stopped", a=(1, "killed"), b=(2, "killed"))
    reset = parse_event(None, "reset", {"reason": "pruned", "pruned_through": 40})
    script = Script([run(), stopped], [StreamReset(reset)])
    assert script.drive(calls.follow_run(7)) == [run(), stopped]
    get, stream = "GET /api/v1/workflow-runs/7", "stream /api/v1/workflow-runs/7/events"
    assert script.calls == [get, stream, get]  # no stream reopened: there is nothing to follow


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


def test_run_wait_tells_each_node_change_once_as_it_comes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    ended = run("failed", a=(1, "failed"), b=(3, "upstream_failed"))
    events = [node_event("b", 3, "queued", kind="job_created"), node_event("b", 3, "queued")]
    events += [node_event("a", 1, "failed"), parse_event(None, "close", {"run_id": 7})]
    told = Script([run(), ended], events).drive(calls.follow_run(7))
    assert progress.wait_run(iter(told)) == ended
    assert capsys.readouterr().err.splitlines() == [
        "[run 7] a: running",
        "[run 7] b: waiting",
        "[run 7] b: queued",
        "[run 7] a: failed",
        "[run 7] b: upstream_failed",  # as the run was read anew at its end
    ]


def test_run_wait_on_a_terminal_counts_the_nodes_done_as_they_end_and_restart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    screen = Console(file=io.StringIO(), force_terminal=True)
    monkeypatch.setattr("jobyard.cli.render.console", lambda stderr=False: screen)
    shown: list[tuple[str, float]] = []
    update = Progress.update

    def told(bar: Progress, task: TaskID, **changes: Any) -> None:
        shown.append((changes["description"], changes["completed"]))
        update(bar, task, **changes)

    monkeypatch.setattr(Progress, "update", told)
    ended = run("failed", a=(4, "failed"), b=(3, "upstream_failed"))
    events = [node_event("b", 3, "queued", kind="job_created"), node_event("a", 1, "failed")]
    events += [node_event("a", 4, "running"), parse_event(None, "close", {"run_id": 7})]
    runs = Script([run(), ended], events).drive(calls.follow_run(7))
    assert progress.wait_run(iter(runs)) == ended
    assert shown == [
        ("run 7 of w: 0/2 nodes done", 0),
        ("run 7 of w: 0/2 nodes done", 0),  # b queued
        ("run 7 of w: 1/2 nodes done", 1),  # a failed
        ("run 7 of w: 0/2 nodes done", 0),  # a restarted
        ("run 7 of w: 2/2 nodes done", 2),  # as the run was read anew at its end
    ]


# -- what a change costs: the same however many nodes the run has ---------------------------
class Visits:
    """Work done, counted: each entry read or copied out of the :class:`Counted` dicts (a
    copy in C, which calls no function), and each function called while ``counting``."""

    def __init__(self) -> None:
        self.count = 0

    @contextmanager
    def counting(self) -> Iterator[None]:
        def called(frame: FrameType, event: str, arg: Any) -> None:
            if event in ("call", "c_call"):
                self.count += 1

        sys.setprofile(called)
        try:
            yield
        finally:
            sys.setprofile(None)


class Counted(dict[str, Any]):
    """A dict that counts in ``visits`` each entry read or copied out of it (``|`` too)."""

    def __init__(self, visits: Visits, *args: Any) -> None:
        super().__init__(*args)
        self.visits = visits

    def __getitem__(self, key: str) -> Any:
        self.visits.count += 1
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.visits.count += 1
        return super().get(key, default)

    def __iter__(self) -> Iterator[str]:
        self.visits.count += len(self)
        return super().__iter__()

    def keys(self) -> Any:
        self.visits.count += len(self)
        return super().keys()

    def values(self) -> Any:
        self.visits.count += len(self)
        return super().values()

    def items(self) -> Any:
        self.visits.count += len(self)
        return super().items()

    def __or__(self, other: Any) -> Counted:
        self.visits.count += len(self)
        return Counted(self.visits, super().__or__(other))

    def copy(self) -> Counted:
        self.visits.count += len(self)
        return Counted(self.visits, super().copy())


# The first ten nodes fail and are restarted twenty times: 400 changes, however many nodes
# the run has. Each node more may cost a few dozen calls and visits in all (read once, shown
# once), not some at each change: a copy or a walk of the nodes at each change is 400 a node.
PER_NODE = 100
CHANGES = [
    node_event(f"n{node}", job, state)
    for job in range(1, 21)
    for node in range(10)
    for state in ("running", "failed")
]


def wide_run(visits: Visits, nodes: int, state: str = "running") -> dict[str, Any]:
    """A run of ``nodes`` nodes, all waiting, whose nodes count their visits."""
    waiting = {f"n{i}": Counted(visits, {"job_id": None, "state": "waiting"}) for i in range(nodes)}
    return {"id": 7, "workflow": "w", "state": state, "nodes": Counted(visits, waiting)}


def follow_wide(nodes: int) -> tuple[list[dict[str, Any]], Visits]:
    """Every run ``follow_run`` tells of a wide run through CHANGES (all kept, as a caller
    may keep them), and the visits to its nodes that took."""
    visits = Visits()
    runs = [wide_run(visits, nodes), wide_run(visits, nodes, "failed")]
    close = parse_event(None, "close", {"run_id": 7, "state": "failed"})
    script = Script(runs, [*CHANGES, close])
    with visits.counting():
        told = script.drive(calls.follow_run(7))
    return told, visits


def test_following_a_run_costs_the_same_per_change_however_many_nodes_it_has() -> None:
    few, many = follow_wide(10), follow_wide(2000)
    assert many[1].count - few[1].count <= PER_NODE * (2000 - 10)
    told = many[0]
    assert len(told) == 1 + len(CHANGES) + 1
    for before, after, event in zip(told, told[1:], CHANGES, strict=False):
        name, job_id, state = event.data["node"], event.data["job_id"], event.data["state"]
        assert after["nodes"][name] == {"job_id": job_id, "state": state}  # kept as told
        assert before["nodes"][name] != after["nodes"][name]
        assert after["nodes"]["n10"] == {"job_id": None, "state": "waiting"}
    assert told[0]["nodes"]["n0"] == {"job_id": None, "state": "waiting"}
    assert dict(told[-2]["nodes"]) == wide_run(Visits(), 2000)["nodes"] | {
        f"n{node}": {"job_id": 20, "state": "failed"} for node in range(10)
    }


@pytest.mark.parametrize("terminal", [False, True], ids=["lines", "bar"])
def test_run_wait_shows_a_change_at_a_cost_that_does_not_grow_with_the_nodes(
    terminal: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress, "on_terminal", lambda: terminal)
    screen = Console(file=io.StringIO(), force_terminal=True)
    monkeypatch.setattr("jobyard.cli.render.console", lambda stderr=False: screen)

    def shown(nodes: int) -> int:
        told, visits = follow_wide(nodes)
        visits.count = 0
        with visits.counting():
            last = progress.wait_run(iter(told))
        assert last["state"] == "failed"
        return visits.count

    few, many = shown(10), shown(2000)
    assert many - few <= PER_NODE * (2000 - 10)
    if not terminal:
        lines = capsys.readouterr().err.splitlines()
        assert lines.count("[run 7] n0: failed") == 2 * 20  # once a change, for each run
        assert lines.count("[run 7] n1999: waiting") == 1  # as first read, not again


def test_the_nodes_of_a_run_told_between_are_a_read_only_mapping_equal_to_their_dict() -> None:
    events = [node_event("b", 3, "queued", kind="job_created")]
    told = Script([run(), run("failed")], events).drive(calls.follow_run(7))
    nodes = told[1]["nodes"]
    assert isinstance(nodes, RunNodes)
    assert nodes == run(b=(3, "queued"))["nodes"] == dict(nodes)
    assert (list(nodes), len(nodes), "c" in nodes) == (["a", "b"], 2, False)
    with pytest.raises(KeyError):
        nodes["c"]
    with pytest.raises(TypeError):
        nodes["b"] = {}  # type: ignore[index]
    assert nodes.changed_since(told[0]["nodes"]) is None  # a dict: compare node by node
    assert nodes.changed_since(nodes) == []
