"""Schedules: fire a job type or a workflow on a cron expression, an interval or once.

Definitions and their validation live in :mod:`jobyard.schedules.spec`, fire times
in :mod:`jobyard.schedules.times`; this module adds the scheduler's decisions and
is the one to import. Everything is pure: time is always a parameter.

A scheduler pass for one schedule looks like this::

    decision = due(spec, last_fire, now, created_at=created_at)
    for when in decision.run:
        if overlap_action(spec, previous_live) != "skip":
            insert a run keyed by fire_key(spec, when)  # unique: idempotent firing
    store decision.last_fire; sleep until decision.next_wake
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cronsim import CronSim

from jobyard.durations import time_zone
from jobyard.schedules.spec import (
    CRON_ALIASES,
    Misfire,
    Overlap,
    ScheduleInvalid,
    ScheduleSpec,
    cron_expression,
    parse_schedule,
)
from jobyard.schedules.times import (
    EPOCH,
    MAX_FIRE_TIMES,
    fire_times,
    latest_fire,
    next_fire,
    utc,
)

__all__ = [
    "CRON_ALIASES",
    "MAX_FIRE_TIMES",
    "MISFIRE_GRACE",
    "FireDecision",
    "Misfire",
    "Overlap",
    "OverlapAction",
    "PausedBy",
    "ScheduleInvalid",
    "ScheduleSpec",
    "describe",
    "due",
    "file_paused_state",
    "fire_key",
    "fire_times",
    "latest_fire",
    "next_fire",
    "overlap_action",
    "parse_schedule",
]

MISFIRE_GRACE = timedelta(seconds=60)
"""With ``misfire: skip``, a fire time at most this old still runs."""

OverlapAction = Literal["fire", "skip", "queue"]


@dataclass(frozen=True)
class FireDecision:
    """What the scheduler does for one schedule at ``now``.

    ``run``: the fire times to run now, oldest first (at most one with the current
    policies). ``missed``: fire times dropped by the misfire policy (counted up to
    :data:`MAX_FIRE_TIMES`). ``last_fire``: the latest fire time handled, run or
    dropped; store it and pass it back next time. ``next_wake``: when to call
    :func:`due` again; None when the schedule will never fire again.
    """

    run: tuple[datetime, ...]
    missed: int
    last_fire: datetime | None
    next_wake: datetime | None


def due(
    spec: ScheduleSpec,
    last_fire: datetime | None,
    now: datetime,
    *,
    created_at: datetime,
    grace: timedelta = MISFIRE_GRACE,
) -> FireDecision:
    """Decide which fire times in ``(last_fire, now]`` run at ``now``.

    ``last_fire`` None means never fired: fire times count from ``created_at``.
    ``misfire: run_once`` runs the latest fire time however late it is and drops
    the ones before it; ``misfire: skip`` runs it only when it is at most ``grace``
    old. A paused schedule runs nothing, and the fire times that pass while it is
    paused are handled (dropped, not counted as missed), so resuming does not
    catch up.
    """
    now = utc(now, "now")
    start = utc(last_fire if last_fire is not None else created_at, "last_fire")
    next_wake = next_fire(spec, max(now, start))
    latest = latest_fire(spec, start, now)
    if latest is None:
        return FireDecision((), 0, last_fire, next_wake)
    if spec.paused:
        return FireDecision((), 0, latest, next_wake)
    earlier = len(fire_times(spec, start, latest, limit=MAX_FIRE_TIMES + 1)) - 1
    if spec.misfire is Misfire.SKIP and now - latest > grace:
        return FireDecision((), min(earlier + 1, MAX_FIRE_TIMES), latest, next_wake)
    return FireDecision((latest,), min(earlier, MAX_FIRE_TIMES), latest, next_wake)


def overlap_action(spec: ScheduleSpec, previous_live: bool) -> OverlapAction:
    """``fire``, ``skip`` or ``queue`` (fire, and the new run waits for the previous one)."""
    if not previous_live or spec.overlap is Overlap.ALLOW:
        return "fire"
    return "queue" if spec.overlap is Overlap.QUEUE else "skip"


PausedBy = Literal["file", "api"]


def file_paused_state(
    in_file: bool, stored: bool | None, seen: bool | None
) -> tuple[bool, PausedBy]:
    """Whether a schedule of the file is paused, and by whom: the file's ``paused``
    (``in_file``), or a pause or resume through the API that says otherwise (``stored``,
    None: none).

    The API's state lasts while the file's value is the one it was (``seen``, when
    the API changed it or the file was last read); a file that says otherwise since
    has changed, and its value applies. ``seen`` None: stored before jobyard kept
    it, so the API's state stays.
    """
    if stored is None or stored == in_file or (seen is not None and seen != in_file):
        return in_file, "file"
    return stored, "api"


def fire_key(spec: ScheduleSpec, when: datetime) -> str:
    """The identity of one fire, ``name@2026-03-29T01:00:00Z``: store it under a unique
    constraint and two schedulers firing the same time create one run."""
    stamp = utc(when, "when")
    precision = "microseconds" if stamp.microsecond else "seconds"
    return f"{spec.name}@{stamp.replace(tzinfo=None).isoformat(timespec=precision)}Z"


# -- describe ------------------------------------------------------------------------
_UNITS = ((604800, "week"), (86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


def describe(spec: ScheduleSpec) -> str:
    """A sentence for people: ``At 02:00 every day (Europe/Berlin)``, ``every 15 minutes``,
    ``once at 2026-03-29T03:30:00+02:00 (Europe/Berlin)``."""
    if spec.cron is not None:
        explained = CronSim(cron_expression(spec.cron), EPOCH).explain()
        return f"{explained} ({spec.timezone})"
    if spec.every is not None:
        text = f"every {interval_text(spec.every)}"
        return text if spec.start_at is None else f"{text} from {_local(spec, spec.start_at)}"
    return f"once at {_local(spec, spec.at or EPOCH)}"


def interval_text(seconds: float) -> str:
    """``15 minutes``, ``hour``, ``1 hour 30 minutes``, ``1.5 seconds``."""
    if seconds != int(seconds):
        return f"{seconds:g} seconds"
    rest, parts = int(seconds), []
    for size, unit in _UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append((count, unit))
    if len(parts) == 1 and parts[0][0] == 1:
        return parts[0][1]
    return " ".join(f"{count} {unit}{'s' if count > 1 else ''}" for count, unit in parts)


def _local(spec: ScheduleSpec, when: datetime) -> str:
    if spec.timezone == "UTC":
        return when.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
    return f"{when.astimezone(time_zone(spec.timezone)).isoformat()} ({spec.timezone})"
