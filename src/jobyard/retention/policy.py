"""The ``retention:`` section of ``jobyard.yaml``: an age per kind of row, or for ever."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from jobyard.durations import parse_duration

FOREVER = "forever"


@dataclass(frozen=True)
class RetentionPolicy:
    """Seconds to keep each kind of row after it is finished; None keeps it for ever.

    ``jobs``: finished jobs (by ``finished_at``) with everything they own; ``logs``,
    ``events``, ``samples``: those rows of finished jobs, the job itself stays;
    ``notifications``: sent, failed or recorded notifications (by ``created_at``);
    ``audit``: audit log entries; ``runs``: finished workflow runs (by
    ``finished_at``) once none of their jobs is left; ``fires``: the record of
    each time a schedule fired (by ``fired_at``), but never a schedule's latest.
    The defaults keep a month of history, a week of logs and samples and a year
    of audit; a running job, a running workflow run is never touched.
    """

    jobs: float | None = 30 * 86400.0
    logs: float | None = 7 * 86400.0
    events: float | None = 30 * 86400.0
    samples: float | None = 7 * 86400.0
    notifications: float | None = 30 * 86400.0
    audit: float | None = 365 * 86400.0
    runs: float | None = 30 * 86400.0
    fires: float | None = 30 * 86400.0

    def cutoff(self, kind: str, now: datetime) -> datetime | None:
        """Rows of ``kind`` finished before this time go; None: they are kept."""
        age = getattr(self, kind)
        return None if age is None else now - timedelta(seconds=age)

    def describe(self) -> dict[str, str]:
        """Each kind's age as written in a file (``30d``, ``forever``)."""
        return {kind: _written(getattr(self, kind)) for kind in KINDS}


KINDS = tuple(field.name for field in fields(RetentionPolicy))
KEEP_ALL = RetentionPolicy(**dict.fromkeys(KINDS))


def parse_retention(raw: Any) -> tuple[RetentionPolicy, list[tuple[list[str], str]]]:
    """The policy of a ``retention:`` value and its problems as ``(path, message)``.

    Each key is one of :data:`KINDS`; each value a duration (``30d``, ``12h``, a
    number of seconds) or ``forever``/null. Keys not given keep their default.
    """
    if raw is None:
        return RetentionPolicy(), []
    if not isinstance(raw, Mapping):
        return RetentionPolicy(), [([], "must be a mapping like {jobs: 30d, logs: 7d}")]
    ages: dict[str, float | None] = {}
    problems: list[tuple[list[str], str]] = []
    for key, value in raw.items():
        if key not in KINDS:
            problems.append(([str(key)], f"unknown key (allowed: {', '.join(KINDS)})"))
            continue
        try:
            ages[key] = _age(value)
        except ValueError as exc:
            problems.append(([key], str(exc)))
    return RetentionPolicy(**ages), problems


def _age(value: Any) -> float | None:
    if value is None or value == FOREVER:
        return None
    if isinstance(value, str) and value.strip().lower() == FOREVER:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{exc}; or 'forever' to keep them") from None
    if seconds <= 0:
        raise ValueError(f"{value!r} must be a duration above zero (like 30d) or 'forever'")
    return seconds


def _written(seconds: float | None) -> str:
    if seconds is None:
        return FOREVER
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
