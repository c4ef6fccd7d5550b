"""Workflow graphs: order, roots, dependents, descendants, cycles; a run's args and times."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobyard.jobtypes.spec import parse_job_type
from jobyard.workflows.dag import (
    NodeSpec,
    WorkflowSpec,
    descendants,
    downstream,
    edges,
    node_args,
    not_before,
    parse_workflows,
    roots,
    topological_order,
)
from jobyard.workflows.graph import cycles, kahn_order

STEP = parse_job_type(
    "step", {"command": ["step", "{n}"], "params": {"n": {"type": "integer", "default": 0}}}
)
TYPES = {"step": STEP}


def build(deps: dict[str, list[str]], **workflow: Any) -> WorkflowSpec:
    nodes = {name: {"type": "step", "depends_on": upstream} for name, upstream in deps.items()}
    return parse_workflows({"w": {"nodes": nodes, **workflow}}, TYPES)["w"]


DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d"], "lone": []}


def assert_respects_edges(spec: WorkflowSpec, order: list[str]) -> None:
    assert sorted(order) == sorted(spec.nodes)
    position = {name: index for index, name in enumerate(order)}
    assert all(position[up] < position[down] for up, down in edges(spec))


def test_helpers_on_a_diamond() -> None:
    spec = build(DIAMOND)
    assert topological_order(spec) == ["a", "lone", "b", "c", "d", "e"]
    assert roots(spec) == ["a", "lone"]
    assert downstream(spec) == {
        "a": ("b", "c"),
        "b": ("d",),
        "c": ("d",),
        "d": ("e",),
        "e": (),
        "lone": (),
    }
    assert edges(spec) == [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e")]
    assert descendants(spec, "a") == {"b", "c", "d", "e"}
    assert descendants(spec, "c") == {"d", "e"}
    assert descendants(spec, "e") == set()
    with pytest.raises(KeyError):
        descendants(spec, "nope")


def test_ten_thousand_nodes() -> None:
    middle = [f"n{i}" for i in range(9_998)]
    deps = {"start": [], **{name: ["start"] for name in middle}, "end": middle}
    spec = build(deps)
    order = topological_order(spec)
    assert (order[0], order[-1], len(order)) == ("start", "end", 10_000)
    assert_respects_edges(spec, order)
    assert roots(spec) == ["start"]
    assert len(downstream(spec)["start"]) == 9_998
    assert descendants(spec, "start") == {*middle, "end"}
    assert descendants(spec, "n5") == {"end"}


def test_a_long_chain_needs_no_recursion() -> None:
    names = [f"s{i}" for i in range(10_000)]
    spec = build({name: names[i - 1 : i] for i, name in enumerate(names)})
    assert topological_order(spec) == names
    assert len(descendants(spec, "s0")) == 9_999
    looped = {name: names[i - 1 : i] or [names[-1]] for i, name in enumerate(names)}
    [cycle] = cycles(looped)
    assert cycle == names


def test_order_respects_every_edge_of_random_dags() -> None:
    rng = random.Random(7)
    for _ in range(20):
        names = [f"v{i}" for i in range(60)]
        rng.shuffle(names)  # file order is not the dependency order
        rank = {name: int(name[1:]) for name in names}
        deps = {
            name: [other for other in names if rank[other] < rank[name] and rng.random() < 0.1]
            for name in names
        }
        spec = build(deps)
        assert_respects_edges(spec, topological_order(spec))


def test_cycles_of_a_raw_graph() -> None:
    deps = {"a": ["c"], "b": ["a"], "c": ["b"], "d": ["d"], "e": ["a"], "f": []}
    assert cycles(deps) == [["a", "b", "c"], ["d"]]
    order, left = kahn_order(deps)
    assert (order, left) == (["f"], ["a", "b", "c", "d", "e"])
    assert cycles({"x": ["y"], "y": []}) == []


def test_cycle_is_a_shortest_one_through_its_first_node() -> None:
    deps = {"a": ["d", "b"], "b": ["a"], "c": ["b"], "d": ["c"]}
    assert cycles(deps) == [["a", "b"]]


def test_topological_order_refuses_a_hand_built_cycle() -> None:
    spec = WorkflowSpec(
        name="w",
        nodes={
            "a": NodeSpec(name="a", type="step", depends_on=("b",)),
            "b": NodeSpec(name="b", type="step", depends_on=("a",)),
        },
    )
    with pytest.raises(ValueError, match="cycle"):
        topological_order(spec)


# -- a run ---------------------------------------------------------------------------
EXPORT = parse_job_type(
    "export",
    {
        "command": ["export", "{day}", "{limit}"],
        "params": {"day": {"required": True}, "limit": {"type": "integer", "default": 10}},
    },
)


def test_node_args_precedence() -> None:
    nodes = {
        "pinned": {"type": "export", "args": {"day": "2026-01-01"}},
        "free": {"type": "export"},
        "other": {"type": "step"},
    }
    raw = {"w": {"nodes": nodes, "args": {"day": "2026-02-01", "n": 3}}}
    spec = parse_workflows(raw, {"export": EXPORT, "step": STEP})["w"]
    assert node_args(spec, "free", EXPORT) == {"day": "2026-02-01"}
    assert node_args(spec, "free", EXPORT, {"day": "2026-03-01", "x": 1}) == {"day": "2026-03-01"}
    assert node_args(spec, "pinned", EXPORT, {"day": "2026-03-01"}) == {"day": "2026-01-01"}
    assert node_args(spec, "other", STEP, {"n": 4}) == {"n": 4}
    assert EXPORT.validate_args(node_args(spec, "free", EXPORT)) == {
        "day": "2026-02-01",
        "limit": 10,
    }


BERLIN = ZoneInfo("Europe/Berlin")


def timed(**node: Any) -> WorkflowSpec:
    raw = {"w": {"timezone": "Europe/Berlin", "nodes": {"n": {"type": "step", **node}}}}
    return parse_workflows(raw, TYPES)["w"]


def test_not_before_at() -> None:
    spec = timed(at="06:00")
    assert spec.nodes["n"].at == time(6, 0)
    started = datetime(2026, 1, 15, 2, 0, tzinfo=BERLIN)
    assert not_before(spec, "n", started) == datetime(2026, 1, 15, 6, 0, tzinfo=BERLIN)
    late = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # 10:00 in Berlin: 06:00 has passed
    assert not_before(spec, "n", late) == datetime(2026, 1, 15, 6, 0, tzinfo=BERLIN)


def test_not_before_cron() -> None:
    spec = timed(cron="0 6 * * 1")  # Mondays at 06:00
    thursday = datetime(2026, 1, 15, 2, 0, tzinfo=BERLIN)
    assert not_before(spec, "n", thursday) == datetime(2026, 1, 19, 6, 0, tzinfo=BERLIN)
    exactly = datetime(2026, 1, 19, 6, 0, tzinfo=BERLIN)
    assert not_before(spec, "n", exactly) == exactly


def test_not_before_without_a_time() -> None:
    spec = timed()
    assert not_before(spec, "n", datetime(2026, 1, 1, tzinfo=UTC)) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        not_before(timed(at="06:00"), "n", datetime(2026, 1, 1))
