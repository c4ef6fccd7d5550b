"""How durations and sizes read for people: ``850 ms``, ``4.2 s``, ``3 min 05 s``,
``2 h 10 min``, ``3 d 4 h``; ``512 B``, ``1.5 kB``, ``500.0 MB``.

The one formatter of the UI (its filters; ``static/js/live.js`` ticks runtimes by the
same rules), the CLI and the notifications. Sizes are in decimal units, as budgets
like ``500MB`` are written (:mod:`jobyard.durations` reads them). A figure is rounded
once, half up, at the precision of the form it would be shown in, and the form is
chosen by the rounded figure: 59.96 s is ``1 min 00 s``, never ``60.0 s``.
"""

from __future__ import annotations

import math

NONE = "—"  # what a value that is not there reads as
_SIZE_UNITS = ("kB", "MB", "GB", "TB")


def duration(seconds: float | None, *, coarse: bool = False, compact: bool = False) -> str:
    """A span of time: ``850 ms``, ``4.2 s``, ``3 min 05 s``, ``2 h 10 min`` (under two
    days), ``3 d 4 h``.

    ``coarse`` drops the fractions for a rough time ("3 min ago"): ``4 s``, ``3 min``,
    then as above. ``compact`` leaves out the spaces, for narrow columns: ``3min05s``.
    """
    if seconds is None:
        return NONE
    if seconds < 0:
        return "-" + duration(-seconds, coarse=coarse, compact=compact)
    gap = "" if compact else " "
    millis, tenths, whole = _round(seconds * 1000), _round(seconds * 10), _round(seconds)
    minutes = _round(seconds / 60)
    if not coarse and millis < 1000:
        return f"{millis}{gap}ms"
    if coarse and whole < 60:
        return f"{whole}{gap}s"
    if not coarse and tenths < 600:
        return f"{tenths // 10}.{tenths % 10}{gap}s"
    if coarse and minutes < 60:
        return f"{minutes}{gap}min"
    if not coarse and whole < 3600:
        return f"{whole // 60}{gap}min{gap}{whole % 60:02d}{gap}s"
    if minutes < 48 * 60:
        return f"{minutes // 60}{gap}h{gap}{minutes % 60:02d}{gap}min"
    hours = _round(seconds / 3600)
    return f"{hours // 24}{gap}d{gap}{hours % 24}{gap}h"


def size(count: float | None) -> str:
    """A number of bytes in decimal units: ``512 B``, ``1.5 kB``, ``20.0 MB``, up to TB."""
    if count is None:
        return NONE
    if count < 0:
        return "-" + size(-count)
    if _round(count) < 1000:
        return f"{_round(count)} B"
    power = 1  # of 1000: kB
    while power < len(_SIZE_UNITS) and _tenths(count, power) >= 10_000:
        power += 1
    tenths = _tenths(count, power)
    return f"{tenths // 10}.{tenths % 10} {_SIZE_UNITS[power - 1]}"


def _tenths(count: float, power: int) -> int:
    """``count`` in tenths of ``1000 ** power``, rounded."""
    return _round(count / 10 ** (3 * power - 1))


def _round(value: float) -> int:
    """Half up, as the page's script rounds (``Math.round``), not to even."""
    return math.floor(value + 0.5)
