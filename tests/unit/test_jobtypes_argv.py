"""Resolving a job type and its arguments into the spec a worker runs."""

from __future__ import annotations

from typing import Any

import pytest

from jobyard.jobtypes.spec import ArgTemplate, JobTypeInvalid, Placeholder, parse_job_type
from jobyard.models import Backoff, JobSpec, RestartPolicy


def resolve(command: list[str], params: dict[str, Any], args: dict[str, Any]) -> JobSpec:
    job_type = parse_job_type("t", {"command": command, "params": params})
    return job_type.resolve(job_type.validate_args(args))


def argv(command: list[str], params: dict[str, Any], args: dict[str, Any]) -> list[str] | None:
    return resolve(command, params, args).argv


def test_substitution_per_element() -> None:
    params = {"from_date": "string", "to_date": "string"}
    args = {"from_date": "2026-01-01", "to_date": "2026-01-31"}
    command = ["export", "--from", "{from_date}", "--to={to_date}"]
    assert argv(command, params, args) == ["export", "--from", "2026-01-01", "--to=2026-01-31"]


@pytest.mark.parametrize(
    "value", ['"; rm -rf /', "$(reboot)", "`id`", "a b c", "x' || true '", "{other}", "\n"]
)
def test_injection_stays_one_element(value: str) -> None:
    assert argv(["echo", "{text}"], {"text": "string"}, {"text": value}) == ["echo", value]
    assert argv(["echo", "pre-{text}"], {"text": "string"}, {"text": value}) == [
        "echo",
        f"pre-{value}",
    ]


def test_list_expands_into_several_elements() -> None:
    params = {"files": {"type": "array", "items": {"type": "string"}}}
    command = ["cat", "{files}", "--end"]
    args = {"files": ["a b", "c;d"]}
    assert argv(command, params, args) == ["cat", "a b", "c;d", "--end"]
    assert argv(command, params, {"files": []}) == ["cat", "--end"]
    assert argv(["x", "--files={files}"], params, args) == ["x", "--files=a b,c;d"]


def test_absent_optional_param() -> None:
    params = {"opt": "string"}
    assert argv(["x", "{opt}", "--opt={opt}", "y"], params, {}) == ["x", "--opt=", "y"]
    assert argv(["x", "{opt}"], params, {"opt": ""}) == ["x", ""]


def test_rendering_of_values() -> None:
    params = {
        "flag": "boolean",
        "n": "integer",
        "ratio": "number",
        "obj": "object",
        "rows": {"type": "array"},
    }
    args = {"flag": False, "n": 3, "ratio": 0.5, "obj": {"a": 1}, "rows": [[1, 2]]}
    command = ["x", "{flag}", "{n}", "{ratio}", "{obj}", "{rows}", "-f={flag}", "-r={rows}"]
    assert argv(command, params, args) == [
        "x",
        "false",
        "3",
        "0.5",
        '{"a":1}',
        "[1,2]",
        "-f=false",
        "-r=[[1,2]]",
    ]


def test_defaults_are_substituted() -> None:
    assert argv(["echo", "Hello, {name}!"], {"name": {"default": "world"}}, {}) == [
        "echo",
        "Hello, world!",
    ]


def test_brace_escapes() -> None:
    params = {"n": "integer"}
    assert argv(["x", "{{n}}", "{{{n}}}", "}}{{"], params, {"n": 1}) == ["x", "{n}", "{1}", "}{"]


def test_template_parsing() -> None:
    assert ArgTemplate.parse("a{b}c").segments == ("a", Placeholder("b"), "c")
    assert ArgTemplate.parse("").segments == ()


@pytest.mark.parametrize(
    "element",
    ["{x.__class__}", "{x[0]}", "{x!r}", "{x:>10}", "{}", "{0}", "{x", "x}", "{ x }", "{a{x}}"],
)
def test_format_tricks_are_rejected_at_definition(element: str) -> None:
    with pytest.raises(JobTypeInvalid) as info:
        parse_job_type("t", {"command": ["echo", element], "params": {"x": "string"}})
    assert [e["field"] for e in info.value.errors] == ["command.1"]


def test_placeholder_without_param() -> None:
    with pytest.raises(JobTypeInvalid) as info:
        parse_job_type("t", {"command": ["echo", "{x}", "{y}"], "params": {"x": "string"}})
    assert info.value.errors == [
        {"field": "command.2", "message": "placeholder {y} names no param"}
    ]


def test_args_are_exported_as_environment() -> None:
    params = {"name": "string", "tags": {"type": "array"}, "deep": "boolean", "opt": "string"}
    job_type = parse_job_type(
        "t", {"command": ["x"], "params": params, "env": {"LANG": "C", "JOBYARD_ARG_NAME": "no"}}
    )
    spec = job_type.resolve(job_type.validate_args({"name": "a b", "tags": ["x"], "deep": True}))
    assert spec.env == {
        "LANG": "C",
        "JOBYARD_ARG_NAME": "a b",
        "JOBYARD_ARG_TAGS": '["x"]',
        "JOBYARD_ARG_DEEP": "true",
    }


def test_shell_gets_params_only_as_environment() -> None:
    job_type = parse_job_type(
        "t",
        {
            "shell": True,
            "command": 'echo "$JOBYARD_ARG_NAME" {name}',
            "params": {"name": {"default": "world"}},
        },
    )
    spec = job_type.resolve(job_type.validate_args({"name": "; rm -rf /"}))
    assert spec.shell is True
    assert spec.argv == ["/bin/sh", "-c", 'echo "$JOBYARD_ARG_NAME" {name}']
    assert spec.env == {"JOBYARD_ARG_NAME": "; rm -rf /"}


def test_python_job_spec() -> None:
    job_type = parse_job_type(
        "t",
        {
            "python": "example_jobs:count",
            "params": {"n": {"type": "integer", "default": 10}},
            "cwd": "/srv",
            "timeout": "2m",
            "kill_grace": "3s",
            "restart": "on-failure",
            "restart_backoff": {"initial": "2s", "max_delay": "1m"},
        },
    )
    spec = job_type.resolve(job_type.validate_args({}))
    assert spec.kind == "python"
    assert spec.argv is None
    assert spec.python == "example_jobs:count"
    assert spec.args == {"n": 10}
    assert spec.env == {"JOBYARD_ARG_N": "10"}
    assert (spec.cwd, spec.timeout, spec.kill_grace) == ("/srv", 120.0, 3.0)
    assert spec.restart is RestartPolicy.ON_FAILURE
    assert (spec.restart_backoff.initial, spec.restart_backoff.max_delay) == (2.0, 60.0)


def test_retries_are_copied() -> None:
    job_type = parse_job_type(
        "t", {"command": ["x"], "retries": {"max": 2, "backoff": "fixed", "initial": "1s"}}
    )
    retries = job_type.resolve({}).retries
    assert (retries.max, retries.backoff, retries.initial) == (2, Backoff.FIXED, 1.0)
    assert retries.delay(2) == 1.0


def test_spec_round_trips() -> None:
    spec = resolve(["echo", "{x}"], {"x": "string"}, {"x": "1"})
    assert JobSpec.from_dict(spec.to_dict()) == spec
