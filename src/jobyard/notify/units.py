"""How durations and sizes read in messages: ``3m 05s``, ``612.0 MB``.

Shared by the one-line summary (:mod:`.message`) and the templates' ``duration`` and
``size`` filters (:mod:`.jinja`), so a subject and a body never write a number two ways.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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


def sla_line(sla: Mapping[str, Any]) -> str:
    """``max_runtime 25m 00s > 20m 00s``; just over, where both read the same, by how much
    (``max_runtime 3.0 s exceeded by 0.027 s``)."""
    budget, value, limit = sla["budget"], sla["value"], sla["limit"]
    if budget == "max_output":
        return _over(budget, human_size(value), human_size(limit), human_size(value - limit))
    if budget == "max_data":
        return _over(sla.get("metric") or budget, f"{value:g}", f"{limit:g}", f"{value - limit:g}")
    excess = f"{value - limit:.2g} s"
    return _over(budget, human_duration(value), human_duration(limit), excess)


def _over(name: str, value: str, limit: str, excess: str) -> str:
    if value == limit:
        return f"{name} {limit} exceeded by {excess}"
    return f"{name} {value} > {limit}"
