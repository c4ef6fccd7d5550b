"""Job type definitions, their JSON Schema and argument validation."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from jobyard.jobtypes.params import args_errors, args_validator
from jobyard.jobtypes.spec import (
    SCHEMA_DIALECT,
    ArgsInvalid,
    JobType,
    JobTypeInvalid,
    parse_job_type,
)
from jobyard.models import Backoff, RestartPolicy

EXPORT: dict[str, Any] = {
    "description": "Export rows between two dates",
    "command": ["python", "-m", "myapp.export", "--from", "{from_date}", "--to", "{to_date}"],
    "params": {
        "from_date": {"type": "string", "format": "date", "required": True},
        "to_date": {"type": "string", "format": "date", "required": True},
        "limit": {"type": "integer", "default": 1000, "minimum": 1, "description": "Rows"},
    },
    "queue": "default",
    "timeout": "1h",
    "retries": {"max": 3, "backoff": "exponential", "initial": "10s"},
}


def export() -> JobType:
    return parse_job_type("export", EXPORT)


def problems(name: str, data: Any) -> list[dict[str, str]]:
    with pytest.raises(JobTypeInvalid) as info:
        parse_job_type(name, data)
    return info.value.errors


def fields(errors: list[dict[str, str]]) -> list[str]:
    return [error["field"] for error in errors]


# -- the schema ---------------------------------------------------------------
def test_schema_from_params() -> None:
    schema = export().json_schema()
    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["type"] == "object"
    assert schema["required"] == ["from_date", "to_date"]
    assert schema["additionalProperties"] is False
    assert schema["properties"] == {
        "from_date": {"type": "string", "format": "date"},
        "to_date": {"type": "string", "format": "date"},
        "limit": {"type": "integer", "default": 1000, "minimum": 1, "description": "Rows"},
    }
    Draft202012Validator.check_schema(schema)


def test_bare_type_and_defaults() -> None:
    job_type = parse_job_type("t", {"command": ["x"], "params": {"name": "string"}})
    assert job_type.json_schema()["properties"] == {"name": {"type": "string"}}
    assert job_type.json_schema()["required"] == []
    assert export().defaults() == {"limit": 1000}


def test_params_as_a_full_json_schema() -> None:
    params = {
        "type": "object",
        "properties": {"ids": {"type": "array", "items": {"type": "integer"}, "default": []}},
        "required": ["ids"],
    }
    job_type = parse_job_type("t", {"command": ["x", "{ids}"], "params": params})
    schema = job_type.json_schema()
    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["ids"]
    assert job_type.validate_args({"ids": [1, 2]}) == {"ids": [1, 2]}


def test_definition_fields() -> None:
    job_type = export()
    assert job_type.timeout == 3600.0
    assert job_type.retries.max == 3
    assert job_type.retries.backoff is Backoff.EXPONENTIAL
    assert job_type.retries.initial == 10.0
    assert job_type.restart is RestartPolicy.NEVER
    assert job_type.source == "config"
    assert parse_job_type("t", {"command": ["x"], "retries": 2}).retries.max == 2
    assert parse_job_type("t", {"python": "m:f", "source": "api"}).source == "api"
    assert parse_job_type("t", {"python": "m:f"}, source="api").kind == "python"


def test_public_dict() -> None:
    public = export().public_dict()
    assert public["name"] == "export"
    assert public["kind"] == "command"
    assert public["command"] == EXPORT["command"]
    assert public["python"] is None
    assert public["shell"] is False
    assert public["params"]["required"] == ["from_date", "to_date"]
    assert public["defaults"] == {"limit": 1000}
    assert public["queue"] == "default"
    assert public["priority"] == 0
    assert public["timeout"] == 3600.0
    assert public["retries"] == {
        "max": 3,
        "backoff": "exponential",
        "initial": 10.0,
        "max_delay": 3600.0,
    }
    assert public["restart"] == "never"
    assert public["source"] == "config"


# -- arguments ----------------------------------------------------------------
def test_validate_fills_defaults() -> None:
    args = export().validate_args({"from_date": "2026-01-01", "to_date": "2026-01-31"})
    assert args == {"from_date": "2026-01-01", "to_date": "2026-01-31", "limit": 1000}


def test_validate_lists_every_bad_field() -> None:
    with pytest.raises(ArgsInvalid) as info:
        export().validate_args({"from_date": "2026-02-30", "limit": 0, "limt": 5})
    assert info.value.errors == [
        {"field": "from_date", "message": '"2026-02-30" is not a "date"'},
        {"field": "limit", "message": "0 is less than the minimum of 1"},
        {"field": "to_date", "message": "required param is missing"},
        {"field": "limt", "message": "unknown param; did you mean 'limit'?"},
    ]


@pytest.mark.parametrize("args", [None, {}])
def test_no_arguments_meet_the_same_errors_each_time(args: dict[str, Any] | None) -> None:
    job_type = export()
    expected = [
        {"field": "from_date", "message": "required param is missing"},
        {"field": "to_date", "message": "required param is missing"},
    ]
    for _ in range(2):
        with pytest.raises(ArgsInvalid) as info:
            job_type.validate_args(args)
        assert info.value.errors == expected
        info.value.errors[0]["field"] = "args.from_date"  # what a caller may do with them


def test_no_arguments_get_fresh_defaults_and_one_spec() -> None:
    job_type = parse_job_type(
        "nap", {"command": ["sleep", "{s}"], "params": {"s": {"default": "1"}}}
    )
    first_args, first = job_type.prepare({})
    first_args["s"] = "9"
    args, spec = job_type.prepare(None)
    assert (args, spec.argv) == ({"s": "1"}, ["sleep", "1"])
    assert spec is first
    assert job_type.prepare({"s": "2"})[1].argv == ["sleep", "2"]


def test_validate_integral_float_becomes_int() -> None:
    args = export().validate_args(
        {"from_date": "2026-01-01", "to_date": "2026-01-02", "limit": 5.0}
    )
    assert args["limit"] == 5
    assert isinstance(args["limit"], int)


def test_integral_floats_become_ints_wherever_the_schema_says_integer() -> None:
    params = {
        "type": "object",
        "properties": {
            "ids": {"type": "array", "items": {"type": "integer"}},
            "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "number"}]},
            "counts": {"type": "object", "additionalProperties": {"type": ["integer", "null"]}},
            "ratio": {"type": "number"},
        },
    }
    job_type = parse_job_type("nested", {"command": ["true"], "params": params})
    args = job_type.validate_args(
        {"ids": [1.0, 2], "pair": [3.0, 4.0], "counts": {"a": 5.0, "b": None}, "ratio": 6.0}
    )
    assert args == {"ids": [1, 2], "pair": [3, 4.0], "counts": {"a": 5, "b": None}, "ratio": 6.0}
    found = (*args["ids"], *args["pair"], args["counts"]["a"], args["ratio"])
    assert [type(v) for v in found] == [int, int, int, float, int, float]


def test_a_nullable_param_takes_null_as_well() -> None:
    params = {
        "limit": {"type": "integer", "nullable": True, "default": 10, "minimum": 1},
        "mode": {"type": "string", "enum": ["full", "delta"], "nullable": True},
        "strict": {"type": "integer"},
    }
    job_type = parse_job_type("opt", {"command": ["run", "{limit}", "{mode}"], "params": params})
    schema = job_type.json_schema()["properties"]
    assert schema["limit"] == {"type": ["integer", "null"], "default": 10, "minimum": 1}
    assert schema["mode"] == {"type": ["string", "null"], "enum": ["full", "delta", None]}
    args, spec = job_type.prepare({"limit": None, "mode": None})
    assert args == {"limit": None, "mode": None}
    assert spec.argv == ["run"]  # a null placeholder gives no argument
    assert job_type.prepare({})[0] == {"limit": 10}
    with pytest.raises(ArgsInvalid) as raised:
        job_type.validate_args({"limit": 0, "mode": "other", "strict": None})
    assert sorted(error["field"] for error in raised.value.errors) == ["limit", "mode", "strict"]


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ({"type": "integer", "nullable": True, "enum": [1, 2]}, 3, "3 is not one of [1, 2, null]"),
        ({"type": "boolean", "enum": [True]}, False, "false is not one of [true]"),
        ({"type": "string"}, None, 'null is not of type "string"'),
        ({"type": "integer", "nullable": True}, "x", '"x" is not of type "integer", "null"'),
        ({"type": "string", "pattern": "^a"}, "b", '"b" does not match "^a"'),
        ({"type": "string", "format": "date"}, "soon", '"soon" is not a "date"'),
        ({"type": "array", "items": {"type": "string"}}, [None], 'null is not of type "string"'),
    ],
)
def test_a_refused_value_is_told_as_json(param: dict[str, Any], value: Any, message: str) -> None:
    """Python's words (``None``, ``'x'``) in the messages of values refused: the caller
    wrote JSON (``null``, ``"x"``)."""
    job_type = parse_job_type("t", {"command": ["run"], "params": {"p": param}})
    with pytest.raises(ArgsInvalid) as raised:
        job_type.validate_args({"p": value})
    assert [error["message"] for error in raised.value.errors] == [message]


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date", "2026-01-31", "2026-1-31"),
        ("date-time", "2026-01-31T10:00:00Z", "2026-01-31T10:00:00"),
        ("date-time", "2026-01-31T10:00:00.5+02:00", "2026-02-30T10:00:00Z"),
        ("time", "10:00:00+01:00", "25:00:00Z"),
        ("email", "ops@example.org", "ops.example.org"),
        ("uri", "https://example.org/x?y=1", "not a uri"),
        ("uri", "mailto:ops@example.org", "/relative/path"),
        ("ipv4", "10.0.0.1", "10.0.0.300"),
        ("uuid", "12345678-1234-5678-1234-567812345678", "1234"),
    ],
)
def test_formats_are_enforced(fmt: str, good: str, bad: str) -> None:
    job_type = parse_job_type("t", {"python": "m:f", "params": {"v": {"format": fmt}}})
    assert job_type.validate_args({"v": good}) == {"v": good}
    with pytest.raises(ArgsInvalid) as info:
        job_type.validate_args({"v": bad})
    assert fields(info.value.errors) == ["v"]


def test_validate_nested_fields() -> None:
    params = {"ids": {"type": "array", "items": {"type": "integer", "minimum": 1}}}
    job_type = parse_job_type("t", {"python": "m:f", "params": params})
    with pytest.raises(ArgsInvalid) as info:
        job_type.validate_args({"ids": [1, 0, "x"]})
    assert fields(info.value.errors) == ["ids.1", "ids.2"]


def test_validate_requires_an_object() -> None:
    with pytest.raises(ArgsInvalid) as info:
        export().validate_args([1, 2])  # type: ignore[arg-type]
    assert info.value.errors == [{"field": "", "message": "the arguments must be an object"}]


def test_validate_enum_and_pattern() -> None:
    params = {"mode": {"enum": ["fast", "slow"]}, "code": {"pattern": "^[A-Z]{3}$"}}
    job_type = parse_job_type("t", {"python": "m:f", "params": params})
    with pytest.raises(ArgsInvalid) as info:
        job_type.validate_args({"mode": "medium", "code": "abc"})
    assert fields(info.value.errors) == ["mode", "code"]


# -- definition problems --------------------------------------------------------
def test_typo_is_an_unknown_key() -> None:
    errors = problems("t", {"comand": ["x"]})
    assert {"field": "comand", "message": "unknown key; did you mean 'command'?"} in errors


def test_an_unknown_key_far_from_any_or_of_another_level_gets_no_did_you_mean() -> None:
    assert problems("t", {"command": ["x"], "colour": 1}) == [
        {"field": "colour", "message": "unknown key"}
    ]
    assert problems("t", {"command": ["x"], "retries": {"queue": 1}}) == [
        {"field": "retries.queue", "message": "unknown key at this level"}
    ]


def test_an_unknown_param_far_from_any_lists_the_known_ones() -> None:
    with pytest.raises(ArgsInvalid) as info:
        export().validate_args({"from_date": "2026-01-01", "to_date": "2026-01-02", "zzz": 1})
    message = "unknown param; known: from_date, to_date, limit"
    assert info.value.errors == [{"field": "zzz", "message": message}]


def test_undeclared_arguments_a_schema_lets_in_must_make_variable_names() -> None:
    """Each argument reaches the job as JOBYARD_ARG_<NAME>: a name with '=' (or none)
    failed the job in its worker ("illegal environment variable name"), and a name
    differing from another in case only set the same variable."""
    open_params = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "limit": {"type": "integer", "default": 5}},
        "additionalProperties": True,
    }
    job_type = parse_job_type("envs", {"command": "env", "shell": True, "params": open_params})
    fine = {"a": "1", "extra_2": 3, "my-key": "x", "ключ": "y"}  # variables may be named so
    assert job_type.validate_args(fine) == fine | {"limit": 5}
    with pytest.raises(ArgsInvalid) as info:
        job_type.validate_args(
            {"a": "1", "b=PATH": "/evil", "x\nLD_PRELOAD": "", "": 1, "A": 2, "LIMIT": 7}
        )
    same = "passed to the job as the same variable as {!r} (names differ in case only)"
    bad = "not a name a variable can have: not empty, no '=', no control character"
    assert info.value.errors == [
        {"field": "b=PATH", "message": bad},
        {"field": "x\nLD_PRELOAD", "message": bad},  # a second variable in an env file
        {"field": "", "message": bad},
        {"field": "A", "message": same.format("a")},
        {"field": "LIMIT", "message": same.format("limit")},  # given its default: one variable
    ]
    with pytest.raises(ArgsInvalid) as info:  # told once, as unknown, where none is let in
        export().validate_args({"from_date": "2026-01-01", "to_date": "2026-01-02", "a=b": 1})
    assert [error["field"] for error in info.value.errors] == ["a=b"]


@pytest.mark.parametrize(("typo", "meant"), [("comand", "command"), ("pyhton", "python")])
def test_a_misspelt_command_is_not_also_said_to_be_missing(typo: str, meant: str) -> None:
    assert problems("t", {typo: ["x"], "queue": "default"}) == [
        {"field": typo, "message": f"unknown key; did you mean {meant!r}?"}
    ]
    # Another key's typo does not explain it: nothing to run is said too.
    assert fields(problems("t", {"descripton": "x"})) == ["descripton", "command"]


def test_command_and_python_exclusive() -> None:
    assert problems("t", {"command": ["x"], "python": "m:f"}) == [
        {"field": "command", "message": "give either command or python, not both"}
    ]
    assert fields(problems("t", {"description": "nothing to run"})) == ["command"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"command": "echo hi"}, "command"),
        ({"command": ["echo"], "shell": True}, "command"),
        ({"command": []}, "command"),
        ({"python": "m:f", "shell": True}, "shell"),
        ({"python": "no-colon"}, "python"),
        ({"command": ["x"], "queue": "bad queue"}, "queue"),
        ({"command": ["x"], "env": {"NOT OK": "1"}}, "env.NOT OK"),
        ({"command": ["x"], "restart": "sometimes"}, "restart"),
        ({"command": ["x"], "timeout": 0}, "timeout"),
        ({"command": ["x"], "timeout": "soon"}, "timeout"),
        ({"command": ["x"], "retries": {"max": -1}}, "retries.max"),
        ({"command": ["x"], "retries": {"backoff": "linear"}}, "retries.backoff"),
        ({"command": ["x"], "retries": {"initial": "10x"}}, "retries.initial"),
        ({"command": ["x"], "sla": {"max_output": "lots"}}, "sla.max_output"),
        ({"command": ["x"], "source": "user"}, "source"),
    ],
)
def test_definition_problem(data: dict[str, Any], field: str) -> None:
    assert field in fields(problems("t", data))


def test_bad_name() -> None:
    assert fields(problems("no spaces", {"command": ["x"]})) == ["name"]
    assert fields(problems("t", {"name": "other", "command": ["x"]})) == ["name"]


def test_not_a_mapping() -> None:
    assert fields(problems("t", None)) == [""]


def test_bad_param_specs_are_all_listed() -> None:
    params = {
        "limit": {"type": "integer", "minimum": "x", "maximun": 3},
        "low": {"type": "integer", "minimum": 1, "default": 0},
        "code": {"type": "string", "pattern": "["},
        "day": {"format": "dat"},
        "bad-name": "string",
        "req": {"required": True, "default": "x"},
        "size": {"type": "string", "minimum": 3},
        "kind": "strng",
    }
    errors = problems("t", {"command": ["x"], "params": params})
    assert fields(errors) == [
        "params.limit.minimum",
        "params.limit.maximun",
        "params.low.default",
        "params.code.pattern",
        "params.day.format",
        "params.bad-name",
        "params.req.default",
        "params.size.minimum",
        "params.kind.type",
    ]
    assert errors[0]["message"] == "Input should be a valid number"
    assert errors[2]["message"] == "0 is less than the minimum of 1"


def test_bad_full_schema() -> None:
    params = {"type": "object", "properties": {"a": {"type": "string", "default": 3}}}
    assert problems("t", {"command": ["x"], "params": params}) == [
        {"field": "params.properties.a.default", "message": '3 is not of type "string"'}
    ]
    params = {"type": "object", "properties": {"a": {}}, "required": "a"}
    assert fields(problems("t", {"command": ["x"], "params": params})) == ["params.required"]


def test_references_resolve_within_the_schema_or_are_refused() -> None:
    # A URL would be fetched by the server at each submission; a pointer to nowhere
    # would fail each one: both are refused when the type is defined.
    local = {
        "type": "object",
        "$defs": {"count": {"type": "integer", "minimum": 1}},
        "properties": {
            "n": {"$ref": "#/$defs/count"},
            "note": {"type": "object", "default": {"$ref": "data, not a reference"}},
        },
    }
    spec = parse_job_type("t", {"command": ["x"], "params": local})
    assert spec.validate_args({"n": 2})["n"] == 2
    with pytest.raises(ArgsInvalid, match=r"n: 0 is less than the minimum of 1"):
        spec.validate_args({"n": 0})
    remote = {"type": "object", "properties": {"x": {"$ref": "http://127.0.0.1:9/x.json"}}}
    nowhere = {"type": "object", "properties": {"x": {"$ref": "#/nowhere"}}}
    listed = {"x": {"type": "array", "items": {"$ref": "#/$defs/none"}}}
    assert problems("t", {"command": ["x"], "params": remote}) == [
        {
            "field": "params.properties.x.$ref",
            "message": "only references within the schema (#/$defs/…) are allowed",
        }
    ]
    assert problems("t", {"command": ["x"], "params": nowhere}) == [
        {
            "field": "params.properties.x.$ref",
            "message": "'#/nowhere' does not resolve within the schema",
        }
    ]
    assert fields(problems("t", {"command": ["x"], "params": listed})) == ["params.x.items.$ref"]


def test_references_that_loop_point_at_data_or_explode_are_refused() -> None:
    loop = {"type": "object", "$defs": {"x": {"$ref": "#/$defs/x"}}}
    loop["properties"] = {"a": {"$ref": "#/$defs/x"}}
    assert problems("t", {"command": ["x"], "params": loop}) == [
        {
            "field": "params",
            "message": "references loop through '#/$defs/x': "
            "recursive schemas are not supported in params",
        }
    ]
    data = {"type": "object", "properties": {"a": {"type": "string", "description": "d"}}}
    data["properties"]["b"] = {"$ref": "#/properties/a/description"}
    assert problems("t", {"command": ["x"], "params": data})[0]["message"] == (
        "'#/properties/a/description' does not point at a schema"
    )
    # Each level doubles: checking one submission would take the server minutes.
    levels: dict[str, Any] = {"d0": {"type": "integer"}}
    for i in range(1, 30):
        levels[f"d{i}"] = {"allOf": [{"$ref": f"#/$defs/d{i - 1}"}] * 2}
    wide = {"type": "object", "$defs": levels, "properties": {"a": {"$ref": "#/$defs/d29"}}}
    assert problems("t", {"command": ["x"], "params": wide})[0]["message"] == (
        "its references expand to more than 10000 schemas"
    )


def test_a_stored_type_is_read_as_it_was_written_and_its_submissions_refused() -> None:
    # Stored before references were checked: listed, not a failure of every listing.
    remote = {"type": "object", "properties": {"x": {"$ref": "http://127.0.0.1:9/x.json"}}}
    stored = parse_job_type("t", {"command": ["x"], "params": remote}, stored=True)
    with pytest.raises(ArgsInvalid, match="the type's params cannot be checked"):
        stored.validate_args({"x": 1})


def test_arguments_of_a_schema_with_a_reference_to_elsewhere_are_refused_not_fetched() -> None:
    # A type stored before references were checked: its arguments cannot be checked.
    schema = {"type": "object", "properties": {"x": {"$ref": "http://127.0.0.1:9/x.json"}}}
    errors = args_errors(args_validator(schema), {"x": 1})
    assert [error["field"] for error in errors] == [""]
    assert errors[0]["message"].startswith("the type's params cannot be checked: ")


def test_error_message_lists_problems() -> None:
    with pytest.raises(JobTypeInvalid, match=r"comand: unknown key"):
        parse_job_type("t", {"comand": ["x"]})
