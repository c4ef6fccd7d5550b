"""Human-friendly durations (``1h30m``) and sizes (``500MB``) for configuration, and
moments given as a duration ago or a time (``6h``, ``2026-12-01T10:00``) for filters.

The duration and size parsers accept plain numbers too, so a value read back from
the database or sent as JSON (``90``, ``1.5``) goes through the same function.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BeforeValidator

from jobyard.spelling import did_you_mean

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
# Longest first: ``ms`` is tried before ``m``.
_UNIT_NAMES = "|".join(sorted(_DURATION_UNITS, key=len, reverse=True))
_DURATION_PART = re.compile(rf"\s*(\d+(?:\.\d+)?)\s*({_UNIT_NAMES})", re.IGNORECASE)
_NUMBER = re.compile(r"\s*\d+(?:\.\d+)?\s*")
_DURATION_HINT = f"use seconds or a duration like 1h30m (units: {', '.join(_DURATION_UNITS)})"
# Longer durations overflow date arithmetic (a schedule's next time, a retry's) for nothing.
MAX_DURATION = 100 * 365.25 * 86400.0
MAX_SIZE = 2**63 - 1  # sizes are compared with 64-bit columns

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)
_SIZE_HINT = "use bytes or a size like 500MB, 2GiB (KB/MB/GB decimal, KiB/MiB/GiB binary)"


def parse_duration(value: str | int | float) -> float:
    """Return ``value`` in seconds: a number of seconds or a string like ``1h30m``.

    Units: ``ms``, ``s``, ``m``, ``h``, ``d``, ``w``; parts add up, each unit at
    most once. Negative, infinite, malformed values and values over a century
    raise :class:`ValueError`.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: {_DURATION_HINT}")
    if isinstance(value, int | float):
        return _in_range(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: {_DURATION_HINT}")
    if _NUMBER.fullmatch(value):
        return _in_range(float(value), value)
    return _in_range(_parse_duration_string(value), value)


def _parse_duration_string(value: str) -> float:
    total, pos, seen = 0.0, 0, set()
    text = value.rstrip()
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        unit = match.group(2).lower() if match else ""
        if match is None or unit in seen:
            raise ValueError(f"invalid duration {value!r}: {_DURATION_HINT}")
        seen.add(unit)
        total += float(match.group(1)) * _DURATION_UNITS[unit]
        pos = match.end()
    if not seen:
        raise ValueError(f"invalid duration {value!r}: {_DURATION_HINT}")
    return total


def parse_positive_duration(value: str | int | float) -> float:
    """:func:`parse_duration` for a duration that must be longer than 0."""
    seconds = parse_duration(value) if not _negative(value) else -1.0
    if not seconds > 0:
        raise ValueError(f"invalid duration {value!r}: must be greater than 0")
    return seconds


def _negative(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value < 0


def _in_range(seconds: float, original: object) -> float:
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {original!r}: must be a finite number ≥ 0")
    if seconds > MAX_DURATION:
        raise ValueError(f"invalid duration {original!r}: longer than 100 years")
    return seconds


def parse_moment(
    text: str, now: datetime, *, zone: tzinfo | None, seconds: bool = False
) -> datetime:
    """``text`` as a moment: a duration back from ``now`` (``6h``) or an ISO 8601 time.

    A time without an offset is in ``zone`` (None: the system's local time zone), and
    a time is returned in ``zone``; a duration back is returned in ``now``'s. A bare
    number is seconds ago when ``seconds`` is true; otherwise a duration must end in its
    unit, and ``20261201`` is a date.
    Raises :class:`ValueError` for anything else, and for a time that ``zone`` would
    put before year 1 or after 9999.
    """
    if seconds or text[-1:].isalpha():
        try:
            ago = timedelta(seconds=parse_duration(text))
        except ValueError:
            pass
        else:
            try:
                return now - ago
            except OverflowError:
                raise ValueError(f"{text!r} reaches back before year 1") from None
    try:
        moment = datetime.fromisoformat(text)  # also takes a trailing Z (Python 3.11)
        if moment.tzinfo is None and zone is not None:
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(zone)
    except OverflowError:  # an offset, or the local zone, moves it past year 1 or 9999
        where = "this time zone" if zone is None else str(zone)
        raise ValueError(f"{text!r} is out of range in {where}") from None
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration back from now (30m, 2h, 1d) "
            "nor an ISO 8601 time (2026-05-01T06:00)"
        ) from None


def parse_size(value: str | int | float) -> int:
    """Return ``value`` in bytes: a number of bytes or a string like ``500MB`` or ``2GiB``."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"invalid size {value!r}: {_SIZE_HINT}")
    if isinstance(value, int | float):
        if math.isnan(value) or math.isinf(value) or value < 0:
            raise ValueError(f"invalid size {value!r}: must be a finite number ≥ 0")
        return _size_in_range(value, value)
    match = _SIZE.fullmatch(value)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"invalid size {value!r}: {_SIZE_HINT}")
    return _size_in_range(float(match.group(1)) * _SIZE_UNITS[unit], value)


def _size_in_range(size: float, original: object) -> int:
    if not size <= MAX_SIZE:  # also false for inf, from a string of 400 digits
        raise ValueError(f"invalid size {original!r}: larger than 8 EiB")
    return int(size)


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: seconds as a float, given as a number or a duration string."""

PositiveDuration = Annotated[float, BeforeValidator(parse_positive_duration)]
"""A :data:`Duration` that must be longer than 0."""

Size = Annotated[int, BeforeValidator(parse_size)]
"""A pydantic field type: bytes as an int, given as a number or a size string."""


def time_zone(name: str) -> tzinfo:
    """The time zone called ``name`` (an IANA name such as ``Europe/Berlin``);
    :class:`ValueError`, with a did-you-mean, for any other name."""
    if name == "UTC":
        return UTC  # cronsim skips its DST handling for this exact object
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        known = sorted(available_timezones()) if isinstance(name, str) and name else []
        message = f"unknown time zone {name!r}{did_you_mean(name, known)}"
        raise ValueError(f"{message} (use an IANA name like Europe/Berlin or UTC)") from exc
