"""Workflow definitions: parsing, and every problem reported with its field path."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest

from jobyard.jobtypes.spec import JobType, RetriesSpec, parse_job_type
from jobyard.models import Sla
from jobyard.workflows.dag import (
    NodeSpec,
    WorkflowInvalid,
    WorkflowSpec,
    parse_workflows,
    roots,
    run_args_problems,
    topological_order,
)

TYPES = {
    "export": parse_job_type(
        "export",
        {
            "command": ["export", "{from_date}", "{to_date}", "{limit}"],
            "params": {
                "from_date": {"type": "string", "format": "date", "required": True},
                "to_date": {"type": "string", "format": "date", "required": True},
                "limit": {"type": "integer", "default": 1000, "minimum": 1},
            },
        },
    ),
    "resize": parse_job_type("resize", {"python": "myapp.jobs:resize"}),
    "notify": parse_job_type("notify", {"command": ["notify", "{to}"], "params": {"to": {}}}),
}
DATES = {"from_date": "2026-01-01", "to_date": "2026-01-31"}


def parse(nodes: dict[str, Any], **workflow: Any) -> WorkflowSpec:
    return parse_workflows({"w": {"nodes": nodes, **workflow}}, TYPES)["w"]


def problems(raw: dict[str, Any], types: dict[str, JobType] = TYPES) -> list[dict[str, str]]:
    with pytest.raises(WorkflowInvalid) as info:
        parse_workflows(raw, types)
    return info.value.errors


def node_problems(nodes: dict[str, Any], **workflow: Any) -> list[dict[str, str]]:
    return problems({"w": {"nodes": nodes, **workflow}})


def test_a_diamond() -> None:
    spec = parse(
        {
            "extract": {"type": "export", "args": DATES},
            "left": {"type": "resize", "depends_on": ["extract"]},
            "right": {"type": "resize", "depends_on": ["extract"]},
            "report": {"type": "notify", "depends_on": ["left", "right"]},
        },
        description="the nightly load",
    )
    assert (spec.name, spec.description, spec.timezone, spec.args) == (
        "w",
        "the nightly load",
        "UTC",
        {},
    )
    assert list(spec.nodes) == ["extract", "left", "right", "report"]
    assert spec.nodes["extract"] == NodeSpec(name="extract", type="export", args=DATES)
    assert spec.nodes["report"].depends_on == ("left", "right")
    assert roots(spec) == ["extract"]
    assert topological_order(spec) == ["extract", "left", "right", "report"]


def test_a_chain_with_times_and_overrides() -> None:
    spec = parse(
        {
            "first": {"type": "resize", "cron": "30 1 * * 1-5"},
            "second": {
                "type": "export",
                "depends_on": "first",  # one name needs no list
                "queue": "exports",
                "priority": 5,
                "timeout": "1h30m",
                "retries": 2,
            },
            "third": {
                "type": "notify",
                "depends_on": ["second", "second"],
                "at": "06:00",
                "retries": {"max": 1, "backoff": "fixed", "initial": "5m"},
                "sla": {"max_runtime": "10m", "on_breach": "kill"},
            },
        },
        timezone="Europe/Berlin",
        args={"from_date": "2026-01-01", "to_date": "2026-01-02"},
    )
    first, second, third = spec.nodes.values()
    assert (first.cron, first.at) == ("30 1 * * 1-5", None)
    assert (second.queue, second.priority, second.timeout) == ("exports", 5, 5400.0)
    assert second.retries == RetriesSpec(max=2)
    assert second.args == {}  # the workflow's args satisfy its required params
    assert third.depends_on == ("second",)
    assert third.at == time(6, 0)
    assert third.retries == RetriesSpec(max=1, backoff="fixed", initial=300)
    assert third.sla is not None
    assert third.sla.policy() == Sla(max_runtime=600.0, on_breach="kill")
    assert (first.queue, first.priority, first.timeout, first.retries) == (None, None, None, None)
    assert spec.timezone == "Europe/Berlin"
    assert topological_order(spec) == ["first", "second", "third"]


def test_a_nodes_queue_is_checked_as_a_types_and_a_jobs_are() -> None:
    raw = {"w": {"nodes": {"a": {"type": "resize", "queue": "exprots"}}}}
    with pytest.raises(WorkflowInvalid) as info:
        parse_workflows(raw, TYPES, queues={"default", "exports"})
    message = "queue 'exprots' is not declared under queues; did you mean 'exports'?"
    assert info.value.errors == [{"field": "workflows.w.nodes.a.queue", "message": message}]
    assert parse_workflows(raw, TYPES)["w"].nodes["a"].queue == "exprots"  # none declared


def test_empty_values_mean_defaults() -> None:
    spec = parse({"a": {"type": "resize", "args": None, "depends_on": None, "at": None}})
    assert spec.nodes["a"] == NodeSpec(name="a", type="resize")
    bare = parse_workflows({"w": {"nodes": {"a": {"type": "resize"}}}}, TYPES)["w"]
    assert bare == WorkflowSpec(name="w", nodes={"a": NodeSpec(name="a", type="resize")})


def test_dependency_on_a_missing_node() -> None:
    errors = node_problems(
        {"extract": {"type": "resize"}, "transform": {"type": "resize", "depends_on": ["extrct"]}}
    )
    assert errors == [
        {
            "field": "workflows.w.nodes.transform.depends_on",
            "message": "unknown node 'extrct'; did you mean 'extract'?",
        }
    ]


def test_self_dependency() -> None:
    errors = node_problems({"a": {"type": "resize", "depends_on": ["a"]}})
    assert errors == [
        {"field": "workflows.w.nodes.a.depends_on", "message": "a node cannot depend on itself"}
    ]


def test_cycle_names_its_nodes_in_order() -> None:
    errors = node_problems(
        {
            "start": {"type": "resize"},
            "a": {"type": "resize", "depends_on": ["start", "c"]},
            "b": {"type": "resize", "depends_on": ["a"]},
            "c": {"type": "resize", "depends_on": ["b"]},
            "after": {"type": "resize", "depends_on": ["c"]},
        }
    )
    assert errors == [
        {"field": "workflows.w.nodes.a.depends_on", "message": "cycle: a → b → c → a"}
    ]


def test_every_cycle_is_reported() -> None:
    errors = node_problems(
        {
            "x": {"type": "resize", "depends_on": ["y"]},
            "y": {"type": "resize", "depends_on": ["x"]},
            "p": {"type": "resize", "depends_on": ["r"]},
            "q": {"type": "resize", "depends_on": ["p"]},
            "r": {"type": "resize", "depends_on": ["q"]},
        }
    )
    assert [e["message"] for e in errors] == ["cycle: x → y → x", "cycle: p → q → r → p"]


def test_unknown_job_type() -> None:
    errors = node_problems({"a": {"type": "exprot"}, "b": {"type": "zzz"}, "c": {}})
    assert errors == [
        {
            "field": "workflows.w.nodes.a.type",
            "message": "unknown job type 'exprot'; did you mean 'export'?",
        },
        {"field": "workflows.w.nodes.b.type", "message": "unknown job type 'zzz'"},
        {"field": "workflows.w.nodes.c.type", "message": "is required"},
    ]


def test_types_known_to_be_broken_are_not_unknown() -> None:
    raw = {"w": {"nodes": {"a": {"type": "broken", "args": {"anything": 1}}}}}
    spec = parse_workflows(raw, TYPES, invalid_types={"broken"})["w"]
    assert spec.nodes["a"].type == "broken"


def test_bad_args_name_every_field() -> None:
    errors = node_problems(
        {"e": {"type": "export", "args": {"from_date": "2026-13-01", "limt": 5, "limit": 0}}}
    )
    base = "workflows.w.nodes.e.args"
    assert sorted(errors, key=lambda e: e["field"]) == [
        {"field": f"{base}.from_date", "message": '"2026-13-01" is not a "date"'},
        {"field": f"{base}.limit", "message": "0 is less than the minimum of 1"},
        {"field": f"{base}.limt", "message": "unknown param; did you mean 'limit'?"},
        {"field": f"{base}.to_date", "message": "required param is missing"},
    ]


def test_bad_workflow_args_are_reported_where_they_are_written() -> None:
    errors = node_problems(
        {"e": {"type": "export", "args": {"to_date": "2026-02-01"}}, "n": {"type": "notify"}},
        args={"from_date": "yesterday", "too": "ops"},
    )
    assert errors == [
        {
            "field": "workflows.w.args.from_date",
            "message": 'for node \'e\': "yesterday" is not a "date"',
        },
        {
            "field": "workflows.w.args.too",
            "message": "no node's job type declares this param; did you mean 'to'?",
        },
    ]


@pytest.mark.parametrize(
    ("node", "field", "message"),
    [
        (
            {"at": "25:00"},
            "at",
            'invalid time \'25:00\': use "HH:MM" on a 24-hour clock, e.g. "06:00"',
        ),
        (
            {"at": 360},
            "at",
            'quote the time, e.g. at: "06:00" (unquoted, YAML reads it as a number)',
        ),
        (
            {"cron": "0 2 * * * *"},
            "cron",
            "invalid cron expression '0 2 * * * *': give 5 fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 2 * * *'",
        ),
        ({"cron": "61 * * * *"}, "cron", "invalid cron expression '61 * * * *': Bad minute"),
        ({"cron": "0 6 * * *", "at": "06:00"}, "cron", "give at or cron, not both"),
        (
            {"timeout": "soon"},
            "timeout",
            "invalid duration 'soon': use seconds or a duration like 1h30m "
            "(units: ms, s, m, h, d, w)",
        ),
        ({"timeout": 0}, "timeout", "must be more than 0"),
        (
            {"retries": {"max": 1, "bakoff": "fixed"}},
            "retries.bakoff",
            "unknown key; did you mean 'backoff'?",
        ),
        ({"retries": {"max": -1}}, "retries.max", "Input should be greater than or equal to 0"),
        (
            {"sla": {"max_runtime": "1h", "on_breach": "panic"}},
            "sla.on_breach",
            "Input should be 'notify' or 'kill'",
        ),
        ({"priority": "high"}, "priority", "must be a whole number"),
        ({"priority": True}, "priority", "must be a whole number"),
        ({"priority": 10**20}, "priority", "must be from -1,000,000 to 1,000,000"),
        ({"queue": "a queue"}, "queue", "a queue name is letters, digits, '_', '.', '-'"),
        ({"depends_on": {"a": 1}}, "depends_on", "must be a list of node names"),
        ({"depends_on": ["ok", 3]}, "depends_on.1", "must be a node name"),
        ({"dependson": ["ok"]}, "dependson", "unknown key; did you mean 'depends_on'?"),
        ({"args": [1]}, "args", "must be a mapping of names to values"),
        (
            {"colour": "red"},
            "colour",
            "unknown key (allowed: type, args, depends_on, at, cron, queue, priority, timeout, "
            "retries, sla)",
        ),
    ],
)
def test_bad_node_field(node: dict[str, Any], field: str, message: str) -> None:
    errors = node_problems({"ok": {"type": "resize"}, "n": {"type": "resize", **node}})
    assert errors == [{"field": f"workflows.w.nodes.n.{field}", "message": message}]


@pytest.mark.parametrize(
    ("workflow", "field", "message"),
    [
        (
            {"timezone": "Europe/Berln"},
            "timezone",
            "unknown time zone 'Europe/Berln'; did you mean 'Europe/Berlin'? "
            "(use an IANA name like Europe/Berlin or UTC)",
        ),
        ({"timezone": 1}, "timezone", "must be a string"),
        ({"description": ["x"]}, "description", "must be a string"),
        ({"args": "x"}, "args", "must be a mapping of names to values"),
        ({"node": {}}, "node", "unknown key; did you mean 'nodes'?"),
        ({"nodes": ["a"]}, "nodes", "must be a mapping of names to values"),
        ({"nodes": []}, "nodes", "must be a mapping of names to values"),
        ({"nodes": {}}, "nodes", "a workflow needs at least one node"),
        ({"nodes": None}, "nodes", "a workflow needs at least one node"),  # `nodes:` alone
    ],
)
def test_bad_workflow_field(workflow: dict[str, Any], field: str, message: str) -> None:
    errors = problems({"w": {"nodes": {"a": {"type": "resize"}}, **workflow}})
    assert errors == [{"field": f"workflows.w.{field}", "message": message}]


def test_bad_shapes_and_names() -> None:
    errors = problems(
        {
            "bad name": {"nodes": {"a": {"type": "resize"}}},
            "list": ["a"],
            "w": {
                "nodes": {
                    "not.ok": {"type": "resize"},
                    "x": "resize",
                    "y": {"type": "resize", "depends_on": ["x"]},
                }
            },
        }
    )
    rule = "use 1-100 letters, digits, '_' or '-', starting with a letter or digit"
    assert errors == [
        {"field": "workflows.bad name", "message": f"invalid workflow name: {rule}"},
        {
            "field": "workflows.list",
            "message": "a workflow is a mapping with nodes (and description, timezone, args)",
        },
        {"field": "workflows.w.nodes.not.ok", "message": f"invalid node name: {rule}"},
        {
            "field": "workflows.w.nodes.x",
            "message": "a node is a mapping with type (and args, depends_on, …)",
        },
    ]  # y depends on x, which exists though it is broken: no second problem for it


def test_every_problem_at_once() -> None:
    errors = problems(
        {
            "a": {
                "nodes": {"n": {"type": "exprot", "at": "6am", "depends_on": ["m"]}},
                "timezone": "Mars/Base",
            },
            "b": {"nodes": {"p": {"type": "resize", "depends_on": ["p"]}}},
            "c": {"descrption": "x"},
        }
    )
    assert [e["field"] for e in errors] == [
        "workflows.a.timezone",
        "workflows.a.nodes.n.at",
        "workflows.a.nodes.n.type",
        "workflows.a.nodes.n.depends_on",
        "workflows.b.nodes.p.depends_on",
        "workflows.c.descrption",
        "workflows.c.nodes",
    ]
    with pytest.raises(WorkflowInvalid) as info:
        parse_workflows({"c": {"descrption": "x"}}, TYPES)
    assert info.value.status == 422
    assert str(info.value).startswith("the workflows are invalid: workflows.c.descrption: ")


def test_run_args_problems_name_undeclared_keys_and_refused_values() -> None:
    """What a run (or a schedule of the workflow) would be refused, below ``args``."""
    spec = parse({"a": {"type": "export", "args": DATES}, "b": {"type": "notify"}})
    assert run_args_problems(spec, TYPES.__getitem__, {"limit": 5, "to": "ops"}) == []
    found = run_args_problems(spec, TYPES.__getitem__, {"limti": 5, "limit": "x", "to": 1})
    fields = [(problem["field"], problem["message"]) for problem in found]
    assert fields[0] == ("limti", "no node's job type declares this param; did you mean 'limit'?")
    assert [field for field, _ in fields[1:]] == ["limit", "to"]
    assert fields[1][1].startswith("for node 'a': ")
    assert fields[2][1].startswith("for node 'b': ")
