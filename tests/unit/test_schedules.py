"""Schedule definitions: parsing, defaults, and errors that name every bad field."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from jobyard.durations import time_zone
from jobyard.errors import Invalid
from jobyard.schedules.due import Misfire, Overlap, ScheduleInvalid, ScheduleSpec, parse_schedule


def fields(data: Any, name: str = "s") -> dict[str, str]:
    """``{field: message}`` of the problems parse_schedule reports for ``data``."""
    with pytest.raises(ScheduleInvalid) as info:
        parse_schedule(name, data)
    return {error["field"]: error["message"] for error in info.value.errors}


def test_design_example_parses() -> None:
    data = yaml.safe_load(
        """
        nightly-run: {workflow: nightly, cron: "0 2 * * *", timezone: Europe/Berlin}
        cleanup:     {job_type: export, args: {limit: 5}, every: 15m}
        """
    )
    nightly = parse_schedule("nightly-run", data["nightly-run"])
    cleanup = parse_schedule("cleanup", data["cleanup"])
    assert (nightly.target, nightly.trigger, nightly.timezone) == (
        ("workflow", "nightly"),
        "cron",
        "Europe/Berlin",
    )
    assert (cleanup.target, cleanup.trigger, cleanup.every) == (
        ("job_type", "export"),
        "every",
        900,
    )
    assert cleanup.args == {"limit": 5}


def test_defaults() -> None:
    spec = parse_schedule("s", {"job_type": "t", "cron": "* * * * *"})
    assert spec.name == "s"
    assert spec.timezone == "UTC"
    assert spec.overlap is Overlap.SKIP
    assert spec.misfire is Misfire.RUN_ONCE
    assert spec.paused is False
    assert spec.args == {}
    assert spec.description == ""


def test_all_options() -> None:
    spec = parse_schedule(
        "s",
        {
            "workflow": "w",
            "args": None,
            "at": "2026-05-01T12:00:00Z",
            "overlap": "queue",
            "misfire": "skip",
            "paused": True,
            "description": "once",
        },
    )
    assert (spec.overlap, spec.misfire, spec.paused, spec.args) == (
        Overlap.QUEUE,
        Misfire.SKIP,
        True,
        {},
    )
    assert spec.trigger == "at"
    assert spec.at == datetime(2026, 5, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "cron", ["0 2 * * *", "*/15 9-17 * * mon-fri", "0 0 L * *", "5 4 * * 1#2", "@daily", "@Hourly"]
)
def test_good_cron(cron: str) -> None:
    assert parse_schedule("s", {"job_type": "t", "cron": cron}).cron == cron


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("61 * * * *", "Bad minute"),
        ("0 25 * * *", "Bad hour"),
        ("0 0 31 2 *", "Bad day-of-month"),
        ("0 0 1 13 *", "Bad month"),
        ("0 0 * * 8", "Bad day-of-week"),
        ("*/0 * * * *", "Bad minute"),
        ("* * * *", "5 fields"),
        ("0 * * * * *", "5 fields"),  # cronsim's seconds field is not cron
        ("", "5 fields"),
        ("@often", "5 fields"),
    ],
)
def test_bad_cron(cron: str, message: str) -> None:
    problems = fields({"job_type": "t", "cron": cron})
    assert list(problems) == ["cron"]
    assert message in problems["cron"]


@pytest.mark.parametrize("name", ["Europe/Berlin", "America/New_York", "UTC", "Etc/UTC"])
def test_good_timezone(name: str) -> None:
    assert parse_schedule("s", {"job_type": "t", "cron": "0 2 * * *", "timezone": name})


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../../etc/passwd", "Europe/"])
def test_unknown_timezone(name: str) -> None:
    problems = fields({"job_type": "t", "cron": "0 2 * * *", "timezone": name})
    assert list(problems) == ["timezone"]
    assert "unknown time zone" in problems["timezone"]


@pytest.mark.parametrize("name", [5, None, ["UTC"]])
def test_a_time_zone_that_is_not_text_is_a_value_error(name: Any) -> None:
    with pytest.raises(ValueError, match=re.escape(f"unknown time zone {name!r} (use")):
        time_zone(name)


def test_a_misspelt_timezone_gets_a_did_you_mean() -> None:
    problems = fields({"job_type": "t", "cron": "0 2 * * *", "timezone": "Europe/Berlinn"})
    assert (
        "unknown time zone 'Europe/Berlinn'; did you mean 'Europe/Berlin'?" in problems["timezone"]
    )


@pytest.mark.parametrize(
    ("every", "seconds"), [("15m", 900), (900, 900), ("1h30m", 5400), (1.5, 1.5)]
)
def test_good_every(every: str | float, seconds: float) -> None:
    spec = parse_schedule("s", {"job_type": "t", "every": every})
    assert spec.every == seconds


@pytest.mark.parametrize(
    ("every", "message"),
    [("0", "at least 1s"), ("500ms", "at least 1s"), (-5, "≥ 0"), ("soon", "invalid duration")],
)
def test_bad_every(every: str | int, message: str) -> None:
    problems = fields({"job_type": "t", "every": every})
    assert list(problems) == ["every"]
    assert message in problems["every"]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"cron": "@daily"}, "job_type", "give job_type"),
        ({"job_type": "t", "workflow": "w", "cron": "@daily"}, "workflow", "either"),
        ({"job_type": "t"}, "cron", "give one trigger"),
        ({"job_type": "t", "cron": "@daily", "every": "1h"}, "every", "only one trigger"),
        ({"job_type": "t", "every": "1h", "at": "2026-01-01T00:00Z"}, "at", "only one trigger"),
        ({"job_type": "t", "cron": "@daily", "start_at": "2026-01-01"}, "start_at", "every only"),
        ({"job_type": "t", "cron": "@daily", "crom": 1}, "crom", "did you mean 'cron'"),
        ({"job_type": "t", "cron": "@daily", "retries": 1}, "retries", "unknown key"),
        ({"job_type": "bad name", "cron": "@daily"}, "job_type", "letters, digits"),
        ({"workflow": "", "cron": "@daily"}, "workflow", "letters, digits"),
        ({"job_type": "t", "cron": "@daily", "overlap": "wait"}, "overlap", "'queue'"),
        ({"job_type": "t", "cron": "@daily", "misfire": "all"}, "misfire", "'run_once'"),
        ({"job_type": "t", "cron": "@daily", "paused": "maybe"}, "paused", "boolean"),
        ({"job_type": "t", "cron": "@daily", "args": [1]}, "args", "dictionary"),
        ({"job_type": "t", "at": 1767225600}, "at", "ISO 8601"),
        ({"job_type": "t", "at": "next tuesday"}, "at", "ISO 8601"),
        ({"job_type": "t", "every": "1h", "start_at": True}, "start_at", "ISO 8601"),
        ({"job_type": "t", "cron": 5}, "cron", "string"),
        ({"job_type": "t", "cron": "@daily", "name": "other"}, "name", "does not match"),
    ],
)
def test_problem_names_its_field(data: dict[str, Any], field: str, message: str) -> None:
    problems = fields(data)
    assert field in problems, problems
    assert message in problems[field]


def test_every_bad_field_is_named_at_once() -> None:
    data = {
        "job_type": "t",
        "workflow": "w",
        "cron": "61 * * * *",
        "every": "never",
        "timezone": "Nowhere/Land",
        "overlap": "sometimes",
    }
    assert set(fields(data)) == {"workflow", "cron", "every", "timezone", "overlap"}


def test_neither_target_nor_trigger_names_both() -> None:
    assert set(fields({"description": "nothing"})) == {"job_type", "cron"}


def test_not_a_mapping() -> None:
    assert list(fields(["cron"])) == [""]


def test_bad_schedule_name() -> None:
    assert "name" in fields({"job_type": "t", "cron": "@daily"}, name="no spaces")


def test_invalid_is_a_422_problem() -> None:
    with pytest.raises(ScheduleInvalid) as info:
        parse_schedule("s", {"job_type": "t", "cron": "x"})
    assert isinstance(info.value, Invalid)
    assert info.value.status == 422
    assert info.value.errors[0]["field"] == "cron"
    assert "cron:" in info.value.detail


# -- datetimes ----------------------------------------------------------------------
def at(value: Any, zone: str = "UTC") -> datetime:
    spec = parse_schedule("s", {"job_type": "t", "at": value, "timezone": zone})
    assert spec.at is not None
    assert spec.at.tzinfo is UTC
    return spec.at


def test_at_with_offset_is_stored_in_utc() -> None:
    assert at("2026-06-01T12:00:00+02:00") == datetime(2026, 6, 1, 10, tzinfo=UTC)
    assert at("2026-06-01T12:00:00+02:00", "America/New_York") == datetime(
        2026, 6, 1, 10, tzinfo=UTC
    )


def test_naive_at_is_read_in_the_timezone() -> None:
    assert at("2026-01-15T02:00:00", "Europe/Berlin") == datetime(2026, 1, 15, 1, tzinfo=UTC)
    assert at("2026-07-15T02:00:00", "Europe/Berlin") == datetime(2026, 7, 15, 0, tzinfo=UTC)
    assert at("2026-07-15T02:00:00") == datetime(2026, 7, 15, 2, tzinfo=UTC)


def test_yaml_datetimes() -> None:
    data = yaml.safe_load("a: 2026-03-29T02:30:00+01:00\nb: 2026-03-30 02:30:00\nc: 2026-04-01")
    assert at(data["a"]) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert at(data["b"], "Europe/Berlin") == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)
    assert at(data["c"], "Europe/Berlin") == datetime(2026, 3, 31, 22, tzinfo=UTC)


def test_skipped_wall_time_is_rejected() -> None:
    problems = fields({"job_type": "t", "at": "2026-03-29T02:30:00", "timezone": "Europe/Berlin"})
    assert "does not exist in Europe/Berlin" in problems["at"]


def test_repeated_wall_time_means_its_first_occurrence() -> None:
    assert at("2026-10-25T02:30:00", "Europe/Berlin") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_start_at_is_localized_like_at() -> None:
    spec = parse_schedule(
        "s", {"job_type": "t", "every": "1d", "start_at": "2026-01-01", "timezone": "Asia/Tokyo"}
    )
    assert spec.start_at == datetime(2025, 12, 31, 15, tzinfo=UTC)


def test_aware_datetime_objects_are_accepted() -> None:
    when = datetime(2026, 6, 1, 12, tzinfo=timezone(timedelta(hours=-3)))
    assert at(when) == datetime(2026, 6, 1, 15, tzinfo=UTC)


# -- the model ----------------------------------------------------------------------
def test_spec_is_frozen() -> None:
    spec = parse_schedule("s", {"job_type": "t", "cron": "@daily"})
    with pytest.raises(ValidationError):
        spec.paused = True  # type: ignore[misc]


def test_direct_construction_checks_the_shape() -> None:
    with pytest.raises(ValidationError, match="give one trigger"):
        ScheduleSpec(name="s", job_type="t")


@pytest.mark.parametrize(
    "data",
    [
        {"job_type": "t", "cron": "0 2 * * *", "timezone": "Europe/Berlin", "args": {"a": [1]}},
        {"workflow": "w", "every": "1h30m", "start_at": "2026-03-29T01:30:00", "timezone": "UTC"},
        {"job_type": "t", "at": "2026-10-25T02:30:00", "timezone": "Europe/Berlin"},
        {"job_type": "t", "cron": "@weekly", "overlap": "allow", "misfire": "skip", "paused": True},
    ],
)
def test_json_round_trip(data: dict[str, Any]) -> None:
    """What the API stores and returns parses back to the same spec."""
    spec = parse_schedule("s", data)
    assert parse_schedule("s", spec.model_dump(mode="json")) == spec
