"""The scheduler's decisions: misfire policies, pausing, overlap, fire keys, descriptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from jobyard.schedules.due import (
    MAX_FIRE_TIMES,
    FireDecision,
    ScheduleSpec,
    describe,
    due,
    file_paused_state,
    fire_key,
    fire_times,
    overlap_action,
    parse_schedule,
)

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def z(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


def spec(**data: Any) -> ScheduleSpec:
    return parse_schedule("s", {"job_type": "t", **data})


# -- on time ------------------------------------------------------------------------
def test_on_time() -> None:
    s = spec(cron="0 * * * *")
    assert due(s, z(2026, 1, 1, 1), z(2026, 1, 1, 2, 0, 0, 300), created_at=CREATED) == (
        FireDecision(
            run=(z(2026, 1, 1, 2),),
            missed=0,
            last_fire=z(2026, 1, 1, 2),
            next_wake=z(2026, 1, 1, 3),
        )
    )


def test_early_wake_runs_nothing() -> None:
    s = spec(cron="0 * * * *")
    decision = due(s, z(2026, 1, 1, 1), z(2026, 1, 1, 1, 59, 59), created_at=CREATED)
    assert decision == FireDecision((), 0, z(2026, 1, 1, 1), z(2026, 1, 1, 2))


def test_never_fired_counts_from_created_at() -> None:
    s = spec(cron="0 * * * *")
    created = z(2026, 1, 1, 5)  # exactly on a fire time: that one is not owed
    assert due(s, None, z(2026, 1, 1, 5, 30), created_at=created) == FireDecision(
        (), 0, None, z(2026, 1, 1, 6)
    )
    assert due(s, None, z(2026, 1, 1, 6), created_at=created).run == (z(2026, 1, 1, 6),)


# -- misfire ------------------------------------------------------------------------
def test_run_once_collapses_ten_missed_times_into_one() -> None:
    s = spec(every="15m")
    last = z(2026, 1, 1, 10)
    now = z(2026, 1, 1, 12, 40)  # 10:15 … 12:30 passed: 10 fire times
    assert len(fire_times(s, last, now)) == 10
    decision = due(s, last, now, created_at=CREATED)
    assert decision.run == (z(2026, 1, 1, 12, 30),)
    assert decision.missed == 9
    assert decision.last_fire == z(2026, 1, 1, 12, 30)
    assert decision.next_wake == z(2026, 1, 1, 12, 45)


def test_run_once_runs_however_late() -> None:
    s = spec(cron="0 2 * * *", timezone="Europe/Berlin")
    decision = due(s, z(2026, 3, 1, 1), z(2026, 4, 1, 12), created_at=CREATED)
    assert decision.run == (z(2026, 4, 1, 0),)
    assert decision.missed == 30


def test_skip_drops_late_fire_times() -> None:
    s = spec(every="15m", misfire="skip")
    decision = due(s, z(2026, 1, 1, 10), z(2026, 1, 1, 12, 40), created_at=CREATED)
    assert decision == FireDecision((), 10, z(2026, 1, 1, 12, 30), z(2026, 1, 1, 12, 45))


def test_skip_runs_a_fire_time_within_the_grace() -> None:
    s = spec(every="15m", misfire="skip")
    now = z(2026, 1, 1, 12, 31)
    decision = due(s, z(2026, 1, 1, 10), now, created_at=CREATED)
    assert decision.run == (z(2026, 1, 1, 12, 30),)
    assert decision.missed == 9
    assert due(s, z(2026, 1, 1, 10), now, created_at=CREATED, grace=timedelta(seconds=30)).run == ()


def test_skip_on_time_is_like_run_once() -> None:
    s = spec(every="15m", misfire="skip")
    decision = due(s, z(2026, 1, 1, 12, 15), z(2026, 1, 1, 12, 30, 1), created_at=CREATED)
    assert decision == FireDecision(
        (z(2026, 1, 1, 12, 30),), 0, z(2026, 1, 1, 12, 30), z(2026, 1, 1, 12, 45)
    )


def test_missed_is_capped() -> None:
    s = spec(cron="* * * * *")
    decision = due(s, z(2026, 1, 1), z(2026, 2, 1), created_at=CREATED)
    assert decision.run == (z(2026, 2, 1),)
    assert decision.missed == MAX_FIRE_TIMES


# -- paused, one-offs, odd clocks ----------------------------------------------------
def test_paused_runs_nothing_and_does_not_catch_up() -> None:
    s = spec(every="15m", paused=True)
    decision = due(s, z(2026, 1, 1, 10), z(2026, 1, 1, 12, 40), created_at=CREATED)
    assert decision == FireDecision((), 0, z(2026, 1, 1, 12, 30), z(2026, 1, 1, 12, 45))
    resumed = spec(every="15m")
    assert due(resumed, decision.last_fire, z(2026, 1, 1, 12, 41), created_at=CREATED).run == ()


def test_one_off_fires_once_then_never() -> None:
    s = spec(at="2026-05-01T12:00:00Z")
    before = due(s, None, z(2026, 5, 1), created_at=CREATED)
    assert before == FireDecision((), 0, None, z(2026, 5, 1, 12))
    fired = due(s, None, z(2026, 5, 1, 12, 0, 2), created_at=CREATED)
    assert fired == FireDecision((z(2026, 5, 1, 12),), 0, z(2026, 5, 1, 12), None)
    assert due(s, fired.last_fire, z(2026, 6, 1), created_at=CREATED) == FireDecision(
        (), 0, z(2026, 5, 1, 12), None
    )


def test_one_off_before_creation_never_fires() -> None:
    s = spec(at="2025-05-01T12:00:00Z")
    assert due(s, None, z(2026, 5, 1), created_at=CREATED) == FireDecision((), 0, None, None)


def test_last_fire_ahead_of_now() -> None:
    """Another scheduler's clock ran ahead: nothing runs twice, wake after its fire."""
    s = spec(cron="0 * * * *")
    decision = due(s, z(2026, 1, 1, 5), z(2026, 1, 1, 4, 30), created_at=CREATED)
    assert decision == FireDecision((), 0, z(2026, 1, 1, 5), z(2026, 1, 1, 6))


def test_due_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due(spec(every="1h"), None, datetime(2026, 1, 1), created_at=CREATED)


@pytest.mark.parametrize(
    "data",
    [
        {"cron": "30 2 * * *", "timezone": "Europe/Berlin"},
        {"cron": "*/20 * * * *", "timezone": "Europe/Berlin"},
        {"every": "45m", "start_at": "2026-03-28T10:00:00Z"},
    ],
)
def test_waking_at_next_wake_fires_every_time_exactly_once(data: dict[str, str]) -> None:
    """A scheduler that sleeps until next_wake runs exactly fire_times, DST days included."""
    s, created = spec(**data), z(2026, 3, 27)
    now, last, runs = created, None, list[datetime]()
    while now <= z(2026, 3, 31):
        decision = due(s, last, now, created_at=created)
        runs += decision.run
        last, now = decision.last_fire, decision.next_wake or z(2027, 1, 1)
    assert runs == fire_times(s, created, z(2026, 3, 31))


# -- overlap ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overlap", "live", "action"),
    [
        ("skip", False, "fire"),
        ("skip", True, "skip"),
        ("queue", False, "fire"),
        ("queue", True, "queue"),
        ("allow", False, "fire"),
        ("allow", True, "fire"),
    ],
)
def test_overlap_action(overlap: str, live: bool, action: str) -> None:
    assert overlap_action(spec(every="1h", overlap=overlap), live) == action


# -- fire keys ----------------------------------------------------------------------
def test_fire_key() -> None:
    s = parse_schedule("nightly-run", {"workflow": "w", "cron": "0 2 * * *"})
    berlin = datetime(2026, 3, 29, 3, tzinfo=timezone(timedelta(hours=2)))
    assert fire_key(s, z(2026, 3, 29, 1)) == "nightly-run@2026-03-29T01:00:00Z"
    assert fire_key(s, berlin) == fire_key(s, z(2026, 3, 29, 1))
    assert fire_key(s, z(2026, 3, 29, 1, 0, 0, 500)) == "nightly-run@2026-03-29T01:00:00.000500Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        fire_key(s, datetime(2026, 3, 29, 1))


# -- describe -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"cron": "0 2 * * *", "timezone": "Europe/Berlin"}, "At 02:00 every day (Europe/Berlin)"),
        ({"cron": "*/15 * * * *"}, "Every 15th minute of every hour (UTC)"),
        ({"cron": "@weekly"}, "At 00:00 on Sunday (UTC)"),
        ({"every": "15m"}, "every 15 minutes"),
        ({"every": "1h"}, "every hour"),
        ({"every": "1h30m"}, "every 1 hour 30 minutes"),
        ({"every": "2w1d"}, "every 2 weeks 1 day"),
        ({"every": 1.5}, "every 1.5 seconds"),
        (
            {"every": "1d", "start_at": "2026-01-01T06:00:00Z"},
            "every day from 2026-01-01T06:00:00Z",
        ),
        (
            {"at": "2026-03-29T03:30:00", "timezone": "Europe/Berlin"},
            "once at 2026-03-29T03:30:00+02:00 (Europe/Berlin)",
        ),
        ({"at": "2026-05-01T12:00:00+02:00"}, "once at 2026-05-01T10:00:00Z"),
    ],
)
def test_describe(data: dict[str, Any], text: str) -> None:
    assert describe(spec(**data)) == text


@pytest.mark.parametrize(
    ("in_file", "stored", "seen", "expected"),
    [
        (True, None, None, (True, "file")),  # never paused or resumed through the API
        (False, True, False, (True, "api")),  # paused through the API; the file unchanged
        (True, False, True, (False, "api")),  # resumed through the API; the file unchanged
        (True, False, False, (True, "file")),  # the file says paused since: it applies
        (False, True, True, (False, "file")),
        (True, False, None, (False, "api")),  # stored before the file's value was kept
        (False, False, False, (False, "file")),  # resumed through the API: as the file says
    ],
)
def test_the_files_paused_applies_when_it_changes(
    in_file: bool, stored: bool | None, seen: bool | None, expected: tuple[bool, str]
) -> None:
    assert file_paused_state(in_file, stored, seen) == expected
