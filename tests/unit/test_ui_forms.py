"""Submit forms from job type schemas, and the typed arguments they send back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jsonschema import Draft202012Validator

from jobyard.jobtypes.params import FORMAT_CHECKER, ParamSpec, args_errors, build_schema
from jobyard.ui.forms import Field, args_from_form, fields

BERLIN = ZoneInfo("Europe/Berlin")
WINTER = datetime(2026, 1, 15, 12, tzinfo=UTC)
SUMMER = datetime(2026, 7, 15, 12, tzinfo=UTC)


def one(prop: dict[str, Any], *, required: bool = False, **options: Any) -> Field:
    schema = {"type": "object", "properties": {"p": prop}, "required": ["p"] if required else []}
    [field] = fields(schema, **options)
    return field


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        ({"type": "string"}, {"kind": "text"}),
        ({"type": "string", "format": "date"}, {"kind": "date"}),
        ({"type": "string", "format": "date-time"}, {"kind": "datetime-local"}),
        ({"type": "string", "format": "time"}, {"kind": "time"}),
        ({"type": "string", "format": "email"}, {"kind": "text"}),
        ({"type": "string", "enum": ["a", "b"]}, {"kind": "select", "options": ("a", "b")}),
        ({"type": "integer", "enum": [1, 2]}, {"kind": "select", "options": ("1", "2")}),
        (
            {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
            {"kind": "integer", "min": 1, "max": 50, "step": "1", "default": "10"},
        ),
        (
            {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
            {"min": 1, "max": 9},
        ),
        (
            {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.5, "default": 1.5},
            {"kind": "number", "min": 0, "max": None, "step": "0.5", "default": "1.5"},
        ),
        ({"type": "number"}, {"kind": "number", "step": "any"}),
        ({"type": "boolean", "default": True}, {"kind": "checkbox", "default": True}),
        ({"type": "boolean"}, {"kind": "checkbox", "default": False}),
        (
            {"type": "array", "items": {"type": "integer"}, "default": [1, 2]},
            {"kind": "list", "default": "1\n2"},
        ),
        ({"type": "array", "items": {"type": "string", "format": "date"}}, {"kind": "list"}),
        ({"type": "array", "items": {"type": "object"}}, {"kind": "textarea-json"}),
        ({"type": "array"}, {"kind": "textarea-json"}),
        (
            {"type": "object", "default": {"a": [1]}},
            {"kind": "textarea-json", "default": '{\n  "a": [\n    1\n  ]\n}'},
        ),
        ({}, {"kind": "textarea-json"}),
        ({"type": ["integer", "null"]}, {"kind": "integer"}),
        ({"type": ["string", "integer"]}, {"kind": "textarea-json"}),
        ({"type": "string", "pattern": "^[a-z]+$"}, {"pattern": ".*(?:^[a-z]+$).*"}),
        ({"type": "string", "description": "Where to"}, {"help": "Where to", "label": "P"}),
        ({"type": "string", "title": "Target"}, {"label": "Target"}),
    ],
)
def test_each_schema_gets_its_input(prop: dict[str, Any], expected: dict[str, Any]) -> None:
    field = one(prop)
    assert {key: getattr(field, key) for key in expected} == expected


def test_labels_required_and_order() -> None:
    schema = {
        "type": "object",
        "properties": {
            "from_date": {"type": "string"},
            "maxURLLength": {"type": "integer"},
            "dry-run": {"type": "boolean"},
        },
        "required": ["from_date", "dry-run"],
    }
    found = [(f.name, f.label, f.required) for f in fields(schema)]
    assert found == [
        ("from_date", "From date", True),
        ("maxURLLength", "Max URL length", False),
        ("dry-run", "Dry run", False),  # a checkbox always sends a value
    ]
    assert fields({"type": "object"}) == []
    assert fields({"type": "object", "properties": "nonsense"}) == []


def test_date_and_time_defaults_are_shown_in_the_zone_without_an_offset() -> None:
    moment = {"type": "string", "format": "date-time", "default": "2026-07-01T04:00:00Z"}
    assert one(moment).default == "2026-07-01T04:00:00"
    assert one(moment, tz=BERLIN).default == "2026-07-01T06:00:00"
    clock = {"type": "string", "format": "time", "default": "05:30:00Z"}
    assert one(clock, tz=BERLIN, now=WINTER).default == "06:30:00"
    assert one(clock, tz=BERLIN, now=SUMMER).default == "07:30:00"
    broken = {"type": "string", "format": "date-time", "default": "soon"}
    assert one(broken).default == "soon"


@pytest.mark.parametrize(
    ("prop", "sent", "expected"),
    [
        ({"type": "string"}, ["abc"], "abc"),
        ({"type": "string"}, [" padded "], " padded "),
        ({"type": "integer"}, ["3"], 3),
        ({"type": "integer"}, [" -3 "], -3),
        ({"type": "integer"}, ["3.0"], 3),
        ({"type": "number"}, ["3"], 3),
        ({"type": "number"}, ["2.5"], 2.5),
        ({"type": "number"}, ["1e3"], 1000.0),
        ({"type": "boolean"}, [], False),
        ({"type": "boolean"}, ["on"], True),
        ({"type": "boolean"}, ["false", "true"], True),  # a hidden "false" before the box
        ({"type": "boolean"}, ["false"], False),
        ({"type": "string", "enum": ["a", "b"]}, ["b"], "b"),
        ({"type": "integer", "enum": [1, 2]}, ["2"], 2),
        ({"enum": [True, None]}, ["null"], None),
        ({"type": "string", "format": "date"}, ["2026-05-01"], "2026-05-01"),
        (
            {"type": "string", "format": "date-time"},
            ["2026-05-01T06:00"],
            "2026-05-01T06:00:00+00:00",
        ),
        (
            {"type": "string", "format": "date-time"},
            ["2026-05-01T06:00:00-03:00"],
            "2026-05-01T06:00:00-03:00",
        ),
        ({"type": "string", "format": "time"}, ["06:00"], "06:00:00+00:00"),
        ({"type": "array", "items": {"type": "integer"}}, ["1\n 2\n\n3\n"], [1, 2, 3]),
        ({"type": "array", "items": {"type": "integer"}}, ["1", "2"], [1, 2]),
        ({"type": "array", "items": {"type": "boolean"}}, ["true\nfalse"], [True, False]),
        ({"type": "array", "items": {"type": "string"}}, ["a b\n c"], ["a b", "c"]),
        ({"type": "array"}, ['["x", 1]'], ["x", 1]),
        ({"type": "object"}, ['{"a": {"b": 1}}'], {"a": {"b": 1}}),
    ],
)
def test_values_are_typed(prop: dict[str, Any], sent: list[str], expected: Any) -> None:
    args, errors = args_from_form({"properties": {"p": prop}}, {"p": sent})
    assert errors == {}
    assert args == {"p": expected}
    assert type(args["p"]) is type(expected)


@pytest.mark.parametrize(
    "prop",
    [
        {"type": "string"},
        {"type": "integer"},
        {"type": "string", "format": "date-time"},
        {"type": "string", "enum": ["a"]},
        {"type": "array", "items": {"type": "integer"}},
        {"type": "object"},
    ],
)
def test_empty_inputs_are_left_out_so_defaults_apply(prop: dict[str, Any]) -> None:
    schema = {"properties": {"p": prop}, "required": ["p"]}
    for sent in ([], [""], ["   "], ["\n\n"]):
        assert args_from_form(schema, {"p": sent}) == ({}, {})


@pytest.mark.parametrize(
    ("prop", "sent", "message"),
    [
        ({"type": "integer"}, "3.5", "must be a whole number"),
        ({"type": "integer"}, "three", "must be a whole number"),
        ({"type": "number"}, "nan", "must be a number"),
        ({"type": "number"}, "inf", "must be a number"),
        ({"type": "number"}, "1,5", "must be a number"),
        ({"type": "string", "enum": ["a", "b"]}, "c", "must be one of: a, b"),
        ({"type": "string", "format": "date"}, "2026-02-30", "must be a date (YYYY-MM-DD)"),
        (
            {"type": "string", "format": "date-time"},
            "tomorrow",
            "must be a date and time (YYYY-MM-DDTHH:MM)",
        ),
        ({"type": "string", "format": "time"}, "25:00", "must be a time (HH:MM)"),
        ({"type": "array", "items": {"type": "integer"}}, "1\nx", "line 2: must be a whole number"),
        ({"type": "array", "items": {"type": "boolean"}}, "yes", "line 1: must be true or false"),
        ({"type": "object"}, '{"a": }', "must be JSON: expected value at line 1 column 7"),
        # Nested past any stack: told, not a RecursionError (a 500 to the browser).
        (
            {"type": "array"},
            "[" * 5000,
            "must be JSON: recursion limit exceeded at line 1 column 202",
        ),
    ],
)
def test_values_that_do_not_parse_are_errors(prop: dict[str, Any], sent: str, message: str) -> None:
    schema = {"properties": {"p": prop, "q": {"type": "integer"}}}
    args, errors = args_from_form(schema, {"p": [sent], "q": ["7"]})
    assert errors == {"p": message}
    assert args == {"q": 7}  # the others are still read


def test_a_browsers_date_and_time_are_read_in_its_zone() -> None:
    schema = {
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "daily": {"type": "string", "format": "time"},
        }
    }
    form = {"at": ["2026-07-01T06:00"], "daily": ["06:00"]}
    summer, _ = args_from_form(schema, form, tz=BERLIN, now=SUMMER)
    assert summer == {"at": "2026-07-01T06:00:00+02:00", "daily": "06:00:00+02:00"}
    winter, _ = args_from_form(schema, form, tz=BERLIN, now=WINTER)
    assert winter == {"at": "2026-07-01T06:00:00+02:00", "daily": "06:00:00+01:00"}


def test_names_the_schema_does_not_declare_are_ignored() -> None:
    schema = {"properties": {"p": {"type": "string"}}}
    assert args_from_form(schema, {"csrf": ["t"], "queue": ["q"], "p": ["x"]}) == ({"p": "x"}, {})


def test_a_form_filled_with_its_defaults_passes_the_servers_checks() -> None:
    params = {
        "from_date": ParamSpec(type="string", format="date", default="2026-01-01"),
        "at": ParamSpec(type="string", format="date-time", default="2026-01-01T05:00:00Z"),
        "daily": ParamSpec(type="string", format="time", default="05:00:00+01:00"),
        "limit": ParamSpec(type="integer", default=1000, minimum=1),
        "ratio": ParamSpec(type="number", default=0.25),
        "mode": ParamSpec(type="string", enum=["fast", "safe"], default="safe"),
        "dry": ParamSpec(type="boolean", default=True),
        "tags": ParamSpec(type="array", items={"type": "string"}, default=["a", "b"]),
        "extra": ParamSpec(type="object", default={"k": [1, 2]}),
        "text": ParamSpec(type="string", required=True),
    }
    schema = build_schema(params)
    validator = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
    for tz in (UTC, BERLIN):
        shown = fields(schema, tz=tz, now=WINTER)
        form = {f.name: [] if f.default in (None, False) else [str(f.default)] for f in shown}
        form["dry"] = ["on"] if form["dry"] else []
        form["text"] = ["hello"]
        args, errors = args_from_form(schema, form, tz=tz, now=WINTER)
        assert errors == {}
        assert args_errors(validator, args) == []
        assert args["at"] in ("2026-01-01T05:00:00+00:00", "2026-01-01T06:00:00+01:00")
        assert (args["limit"], args["ratio"], args["dry"]) == (1000, 0.25, True)
        assert (args["tags"], args["extra"], args["mode"]) == (["a", "b"], {"k": [1, 2]}, "safe")
