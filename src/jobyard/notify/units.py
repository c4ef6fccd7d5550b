"""How durations and sizes read in messages: ``3m 05s``, ``612.0 MB``.

Shared by the one-line summary (:mod:`.message`) and the templates' ``duration`` and
``size`` filters (:mod:`.jinja`), so a subject and a body never write a number two ways.
"""

from __future__ import annotations


def human_duration(seconds: float | None) -> str:
    """``45.2 s``, ``3m 05s``, ``2h 00m 09s``, ``1d 4h 00m``."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h {minutes:02d}m"
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def human_size(count: float) -> str:
    """``512 B``, ``612.0 MB``: decimal units, as budgets like ``500MB`` are written."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(count) < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"
