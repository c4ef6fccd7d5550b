from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from jobyard.durations import parse_duration, parse_moment, parse_positive_duration, parse_size

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def in_tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The system's local time zone is not UTC (``zone=None`` reads a naive time in it)."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("2.5", 2.5),
        ("10s", 10.0),
        ("15m", 900.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("500ms", 0.5),
        ("1m30s250ms", 90.25),
        (" 10S ", 10.0),
        (0, 0.0),
    ],
)
def test_parse_duration(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value", ["", "soon", "10x", "-5", "-5s", "1h1h", "h", "10 s s", "1.2.3s", "1h-30m"]
)
def test_parse_duration_rejects_malformed_strings(value: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


def test_the_error_names_every_unit_the_parser_accepts() -> None:
    with pytest.raises(ValueError, match="invalid duration") as bad:
        parse_duration("soon")
    units = str(bad.value).partition("(units: ")[2].removesuffix(")").split(", ")
    assert units == ["ms", "s", "m", "h", "d", "w"]
    assert [parse_duration(f"2{unit}") for unit in units] == [0.002, 2, 120, 7200, 172800, 1209600]


@pytest.mark.parametrize("value", [-1, math.inf, math.nan, True, None, [10]])
def test_parse_duration_rejects_other_values(value: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1024, 1024),
        ("1024", 1024),
        ("500B", 500),
        ("500MB", 500_000_000),
        ("500 mb", 500_000_000),
        ("2KB", 2000),
        ("1.5GB", 1_500_000_000),
        ("1KiB", 1024),
        ("2MiB", 2 * 1024**2),
        ("1GiB", 1024**3),
        ("1TB", 10**12),
    ],
)
def test_parse_size(value: str | int, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["", "big", "5XB", "-1MB", "MB", -1, True, math.inf])
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [1e300, 3.2e9, "9" * 400, "9" * 400 + "s", "5300w"])
def test_parse_duration_refuses_more_than_a_century(value: str | float) -> None:
    """Longer durations only overflow the date arithmetic of schedules and retries."""
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


def test_parse_duration_takes_up_to_a_century() -> None:
    assert parse_duration("5200w") == 5200 * 604800.0


@pytest.mark.parametrize("value", [2**63, 1e300, "9" * 400, "9" * 30 + "GB"])
def test_parse_size_refuses_more_than_64_bits(value: str | float) -> None:
    with pytest.raises(ValueError, match="larger than 8 EiB"):
        parse_size(value)


@pytest.mark.parametrize("value", [-5, -0.5, 0, "0", "0s", "0h0m"])
def test_a_positive_duration_says_it_must_be_greater_than_0(value: str | float) -> None:
    with pytest.raises(ValueError, match="must be greater than 0"):
        parse_positive_duration(value)


def test_a_positive_duration_is_a_duration() -> None:
    assert parse_positive_duration("1h30m") == parse_duration("1h30m") == 5400.0
    assert parse_positive_duration(0.001) == 0.001


@pytest.mark.parametrize("zone", [UTC, None])
def test_a_moment_is_a_duration_back_from_now(zone: tzinfo | None) -> None:
    assert parse_moment("6h", NOW, zone=zone) == NOW - timedelta(hours=6)
    assert parse_moment("1d12h", NOW, zone=zone) == NOW - timedelta(days=1, hours=12)
    assert parse_moment("90", NOW, zone=zone, seconds=True) == NOW - timedelta(seconds=90)


@pytest.mark.parametrize("zone", [UTC, ZoneInfo("Asia/Tokyo"), None])
def test_a_moment_is_an_iso_time_with_z_or_an_offset(zone: tzinfo | None, in_tokyo: None) -> None:
    for text, moment in [
        ("2026-12-01T10:00Z", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
        ("2026-12-01T10:00:00+02:00", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("2026-12-01T10:00-05:30", datetime(2026, 12, 1, 15, 30, tzinfo=UTC)),
    ]:
        found = parse_moment(text, NOW, zone=zone)
        assert found == moment, text
        assert found.utcoffset() == moment.astimezone(zone).utcoffset()  # given in the zone


def test_a_naive_time_is_in_the_zone_given(in_tokyo: None) -> None:
    assert parse_moment("2026-12-01T10:00", NOW, zone=UTC) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert parse_moment("2026-12-01", NOW, zone=UTC) == datetime(2026, 12, 1, tzinfo=UTC)
    tokyo = parse_moment("2026-12-01T10:00", NOW, zone=ZoneInfo("Asia/Tokyo"))
    assert tokyo == datetime(2026, 12, 1, 1, tzinfo=UTC)
    local = parse_moment("2026-12-01T10:00", NOW, zone=None)
    assert local == datetime(2026, 12, 1, 1, tzinfo=UTC)  # the system's local time: Tokyo's
    assert local.utcoffset() == timedelta(hours=9)


def test_a_bare_number_is_seconds_only_when_asked() -> None:
    assert parse_moment("20261201", NOW, zone=UTC) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_moment("20261201", NOW, zone=UTC, seconds=True) == NOW - timedelta(
        seconds=20261201
    )
    with pytest.raises(ValueError, match="neither a duration"):
        parse_moment("90", NOW, zone=UTC)


@pytest.mark.parametrize("text", ["yesterday", "", "6x", "2026-13-01", "1h1h", "-1h", "Z"])
@pytest.mark.parametrize("zone", [UTC, None])
def test_a_moment_refuses_garbage(text: str, zone: tzinfo | None) -> None:
    with pytest.raises(ValueError, match=rf"^{text!r} is neither a duration back from now"):
        parse_moment(text, NOW, zone=zone, seconds=zone is None)


def test_a_time_out_of_range_is_no_moment_and_raises_no_overflow() -> None:
    with pytest.raises(ValueError, match="'9999-12-31T23:00-05:00' is out of range in UTC"):
        parse_moment("9999-12-31T23:00-05:00", NOW, zone=UTC)
    with pytest.raises(ValueError, match="out of range in UTC"):
        parse_moment("0001-01-01T00:00+05:00", NOW, zone=UTC)
    with pytest.raises(ValueError, match="out of range in Asia/Tokyo"):
        parse_moment("9999-12-31T23:00Z", NOW, zone=ZoneInfo("Asia/Tokyo"))
    with pytest.raises(ValueError, match="'6h' reaches back before year 1"):
        parse_moment("6h", datetime(1, 1, 1, 1, tzinfo=UTC), zone=UTC)
