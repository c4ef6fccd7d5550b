"""Fire times: cron in UTC and across the 2026 DST changes, intervals, one-offs, bounds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import pytest

from jobyard.schedules.due import (
    MAX_FIRE_TIMES,
    ScheduleSpec,
    fire_times,
    latest_fire,
    next_fire,
    parse_schedule,
)

BERLIN = "Europe/Berlin"
SPRING = datetime(2026, 3, 29, tzinfo=UTC)  # Berlin: 02:00 CET → 03:00 CEST, at 01:00Z
AUTUMN = datetime(2026, 10, 25, tzinfo=UTC)  # Berlin: 03:00 CEST → 02:00 CET, at 01:00Z


def z(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


def spec(**data: Any) -> ScheduleSpec:
    return parse_schedule("s", {"job_type": "t", **data})


def day_of(s: ScheduleSpec, start: datetime, hours: int = 24) -> list[datetime]:
    return fire_times(s, start - timedelta(microseconds=1), start + timedelta(hours=hours))


# -- cron in UTC ----------------------------------------------------------------------
def test_cron_utc_next() -> None:
    s = spec(cron="0 2 * * *")
    assert next_fire(s, z(2026, 1, 1)) == z(2026, 1, 1, 2)
    assert next_fire(s, z(2026, 1, 1, 2)) == z(2026, 1, 2, 2)  # strictly after
    assert next_fire(s, z(2026, 1, 1, 1, 59, 59, 999999)) == z(2026, 1, 1, 2)
    assert next_fire(s, z(2026, 1, 1, 2, 0, 0, 1)) == z(2026, 1, 2, 2)


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("*/15 * * * *", z(2026, 1, 1, 10, 7), z(2026, 1, 1, 10, 15)),
        ("0 9 * * mon-fri", z(2026, 1, 2, 10), z(2026, 1, 5, 9)),  # Friday → Monday
        ("0 0 1 * *", z(2026, 1, 15), z(2026, 2, 1)),
        ("0 0 L * *", z(2026, 2, 1), z(2026, 2, 28)),
        ("0 0 29 2 *", z(2026, 3, 1), z(2028, 2, 29)),
        ("@weekly", z(2026, 1, 1), z(2026, 1, 4)),  # Sunday
        ("@yearly", z(2026, 6, 1), z(2027, 1, 1)),
    ],
)
def test_cron_utc_expressions(cron: str, after: datetime, expected: datetime) -> None:
    assert next_fire(spec(cron=cron), after) == expected


def test_results_are_utc_whatever_the_input_offset() -> None:
    after = datetime(2026, 1, 1, 3, tzinfo=timezone(timedelta(hours=5)))  # 2025-12-31T22:00Z
    result = next_fire(spec(cron="0 * * * *"), after)
    assert result == z(2025, 12, 31, 23)
    assert result is not None
    assert result.tzinfo is UTC


def test_naive_times_are_refused() -> None:
    s = spec(cron="@daily")
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire(s, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        fire_times(s, z(2026, 1, 1), datetime(2026, 1, 2))


# -- cron in Europe/Berlin -------------------------------------------------------------
def test_berlin_winter_and_summer() -> None:
    s = spec(cron="0 2 * * *", timezone=BERLIN)
    assert next_fire(s, z(2026, 1, 10)) == z(2026, 1, 10, 1)
    assert next_fire(s, z(2026, 7, 9, 12)) == z(2026, 7, 10, 0)


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("30 2 * * *", [z(2026, 3, 29, 1)]),  # 02:30 does not exist: 03:00 CEST
        ("0 2 * * *", [z(2026, 3, 29, 1)]),
        ("30 1 * * *", [z(2026, 3, 29, 0, 30)]),  # before the change: CET
        ("30 3 * * *", [z(2026, 3, 29, 1, 30)]),  # after it: CEST
        ("0 2,3 * * *", [z(2026, 3, 29, 1)]),  # 02:00 and 03:00 become one fire
    ],
)
def test_spring_forward_fires_once(cron: str, expected: list[datetime]) -> None:
    s = spec(cron=cron, timezone=BERLIN)
    assert day_of(s, z(2026, 3, 28, 23)) == expected  # the local day 29 March


def test_spring_forward_days_around() -> None:
    s = spec(cron="30 2 * * *", timezone=BERLIN)
    assert fire_times(s, z(2026, 3, 27), z(2026, 3, 31)) == [
        z(2026, 3, 27, 1, 30),
        z(2026, 3, 28, 1, 30),
        z(2026, 3, 29, 1),
        z(2026, 3, 30, 0, 30),
    ]


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("30 2 * * *", [z(2026, 10, 25, 0, 30)]),  # 02:30 occurs twice: the first one
        ("0 2 * * *", [z(2026, 10, 25, 0)]),
        ("30 1 * * *", [z(2026, 10, 24, 23, 30)]),
        ("30 3 * * *", [z(2026, 10, 25, 2, 30)]),  # CET
    ],
)
def test_fall_back_fires_once(cron: str, expected: list[datetime]) -> None:
    s = spec(cron=cron, timezone=BERLIN)
    assert day_of(s, z(2026, 10, 24, 22), hours=25) == expected  # the local day 25 October


def test_fall_back_from_inside_the_repeated_hour() -> None:
    """After the first 02:30 has fired, the second pass through 02:30 does not fire."""
    s = spec(cron="30 2 * * *", timezone=BERLIN)
    second_pass = z(2026, 10, 25, 1, 15)  # 02:15 CET, after 02:30 CEST (00:30Z)
    assert next_fire(s, z(2026, 10, 25, 0, 30)) == z(2026, 10, 26, 1, 30)
    assert next_fire(s, second_pass) == z(2026, 10, 26, 1, 30)
    assert latest_fire(s, z(2026, 10, 24), second_pass) == z(2026, 10, 25, 0, 30)


@pytest.mark.parametrize(("day", "count"), [(z(2026, 3, 28, 23), 23), (z(2026, 10, 24, 22), 25)])
def test_hourly_follows_elapsed_time(day: datetime, count: int) -> None:
    s = spec(cron="0 * * * *", timezone=BERLIN)
    times = fire_times(s, day - timedelta(seconds=1), day + timedelta(hours=count - 1))
    assert len(times) == count
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(times))


def test_quarter_hours_across_fall_back_have_no_gap_or_duplicate() -> None:
    s = spec(cron="*/15 * * * *", timezone=BERLIN)
    times = fire_times(s, z(2026, 10, 24, 22), z(2026, 10, 25, 23))
    assert len(times) == 25 * 4
    assert {b - a for a, b in pairwise(times)} == {timedelta(minutes=15)}


def test_new_york_changes_too() -> None:
    s = spec(cron="30 2 * * *", timezone="America/New_York")
    assert next_fire(s, z(2026, 3, 8)) == z(2026, 3, 8, 7)  # 03:00 EDT
    assert fire_times(s, z(2026, 10, 31, 12), z(2026, 11, 2, 12)) == [
        z(2026, 11, 1, 7, 30),  # 01:00-02:00 repeats there; 02:30 is once, EST
        z(2026, 11, 2, 7, 30),
    ]


# -- every ------------------------------------------------------------------------------
def test_every_without_anchor_is_aligned_to_the_epoch() -> None:
    s = spec(every="15m")
    assert next_fire(s, z(2026, 1, 1, 10, 7)) == z(2026, 1, 1, 10, 15)
    assert next_fire(s, z(2026, 1, 1, 10, 15)) == z(2026, 1, 1, 10, 30)
    assert next_fire(spec(every="1h"), z(2026, 1, 1, 10, 59, 59)) == z(2026, 1, 1, 11)


def test_every_with_start_at() -> None:
    s = spec(every="1h", start_at="2026-01-01T00:20:00Z")
    assert next_fire(s, z(2025, 6, 1)) == z(2026, 1, 1, 0, 20)  # the anchor is the first
    assert next_fire(s, z(2026, 1, 1, 0, 20)) == z(2026, 1, 1, 1, 20)
    assert next_fire(s, z(2026, 1, 1, 5)) == z(2026, 1, 1, 5, 20)
    assert latest_fire(s, z(2025, 1, 1), z(2026, 1, 1, 0, 19)) is None


def test_every_ignores_dst() -> None:
    s = spec(every="90m", start_at="2026-10-24T22:00:00", timezone=BERLIN)
    times = fire_times(s, z(2026, 10, 24), z(2026, 10, 25, 6))
    assert times[0] == z(2026, 10, 24, 20)  # 22:00 CEST
    assert {b - a for a, b in pairwise(times)} == {timedelta(minutes=90)}


def test_every_has_no_float_drift() -> None:
    s = spec(every=1.1, start_at="2026-01-01T00:00:00Z")
    far = next_fire(s, z(2026, 1, 1) + timedelta(days=365))
    assert far is not None
    assert (far - z(2026, 1, 1)) % timedelta(microseconds=1_100_000) == timedelta(0)


# -- at -----------------------------------------------------------------------------------
def test_one_off() -> None:
    s = spec(at="2026-05-01T12:00:00Z")
    assert next_fire(s, z(2026, 5, 1)) == z(2026, 5, 1, 12)
    assert next_fire(s, z(2026, 5, 1, 12)) is None
    assert next_fire(s, z(2026, 6, 1)) is None
    assert fire_times(s, z(2026, 1, 1), z(2027, 1, 1)) == [z(2026, 5, 1, 12)]
    assert latest_fire(s, z(2026, 1, 1), z(2026, 5, 1, 12)) == z(2026, 5, 1, 12)
    assert latest_fire(s, z(2026, 5, 1, 12), z(2027, 1, 1)) is None


# -- bounds --------------------------------------------------------------------------------
def test_fire_times_bounds() -> None:
    s = spec(cron="0 * * * *")
    assert fire_times(s, z(2026, 1, 1, 1), z(2026, 1, 1, 3)) == [z(2026, 1, 1, 2), z(2026, 1, 1, 3)]
    assert fire_times(s, z(2026, 1, 1, 3), z(2026, 1, 1, 3)) == []
    assert fire_times(s, z(2026, 1, 2), z(2026, 1, 1)) == []
    assert len(fire_times(s, z(2026, 1, 1), z(2027, 1, 1))) == MAX_FIRE_TIMES
    assert fire_times(s, z(2026, 1, 1), z(2027, 1, 1), limit=2) == [
        z(2026, 1, 1, 1),
        z(2026, 1, 1, 2),
    ]


def test_latest_fire_is_cheap_over_years() -> None:
    s = spec(cron="* * * * *", timezone=BERLIN)
    assert latest_fire(s, z(2016, 1, 1), z(2026, 10, 25, 1, 30, 30)) == z(2026, 10, 25, 1, 30)


# -- properties ----------------------------------------------------------------------------
SPECS = [
    {"cron": "30 2 * * *", "timezone": BERLIN},
    {"cron": "0 2 * * *", "timezone": BERLIN},
    {"cron": "0,10,20,30,40,50 2 * * *", "timezone": BERLIN},
    {"cron": "15 1-3 * * *", "timezone": BERLIN},
    {"cron": "0 * * * *", "timezone": BERLIN},
    {"cron": "*/7 * * * *", "timezone": BERLIN},
    {"cron": "30 2 * * *", "timezone": "America/New_York"},
    {"cron": "0 2 * * *", "timezone": "Australia/Lord_Howe"},  # a 30-minute DST shift
    {"cron": "45 23 * * 0", "timezone": "UTC"},
    {"every": "15m"},
    {"every": "7m", "start_at": "2026-03-29T01:30:00", "timezone": BERLIN},
    {"at": "2026-10-25T02:30:00", "timezone": BERLIN},
]
WINDOWS = [z(2026, 3, 28, 12), z(2026, 10, 24, 12), z(2026, 3, 7, 12), z(2026, 10, 3, 12)]


@pytest.mark.parametrize("data", SPECS, ids=lambda d: " ".join(map(str, d.values())))
def test_next_fire_properties(data: dict[str, str]) -> None:
    """next_fire(after) > after, nothing fires in between, latest_fire agrees."""
    s, rng = spec(**data), random.Random(2026)
    for start in WINDOWS:
        horizon = start + timedelta(hours=48)
        reference = fire_times(s, start, horizon)
        assert reference == sorted(set(reference))
        for _ in range(60):
            after = start + timedelta(
                seconds=rng.randrange(40 * 3600), microseconds=rng.choice([0, 7])
            )
            nxt = next_fire(s, after)
            expected = next((t for t in reference if t > after), None)
            if expected is not None:
                assert nxt == expected
            else:
                assert nxt is None or nxt > horizon
            if nxt is None:
                continue
            assert nxt > after
            assert fire_times(s, after, nxt) == [nxt]
            assert latest_fire(s, after, nxt) == nxt
            assert latest_fire(s, after, nxt - timedelta(microseconds=1)) is None


@pytest.mark.parametrize("data", SPECS, ids=lambda d: " ".join(map(str, d.values())))
def test_latest_fire_matches_fire_times(data: dict[str, str]) -> None:
    s, rng = spec(**data), random.Random(7)
    for start in WINDOWS:
        reference = fire_times(s, start, start + timedelta(hours=48))
        for _ in range(60):
            a, b = sorted(start + timedelta(seconds=rng.randrange(48 * 3600)) for _ in "ab")
            inside = [t for t in reference if a < t <= b]
            assert latest_fire(s, a, b) == (inside[-1] if inside else None)
