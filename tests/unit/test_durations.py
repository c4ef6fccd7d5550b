from __future__ import annotations

import math

import pytest

from jobyard.durations import parse_duration, parse_positive_duration, parse_size


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
