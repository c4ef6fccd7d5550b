"""When a schedule fires: pure functions of a spec and the times passed in.

Nothing here reads the clock. Every datetime taken must be timezone-aware and
every datetime returned is aware UTC, so fire times compare and store the same
everywhere.

Cron expressions are evaluated by cronsim in the schedule's time zone, with
Debian cron's DST rules for jobs at a fixed minute and hour: a wall time that is
skipped in spring fires at the first valid time after it (``30 2 * * *`` in
Europe/Berlin fires at 03:00 on 29 March 2026), and a wall time that occurs twice
in autumn fires once, at its first occurrence. Expressions with ``*`` in the
minute or hour field follow elapsed time instead, like an hourly job that runs
23 times on the spring day and 25 times on the autumn day.

Intervals (``every``) are fixed UTC steps from ``start_at``, or from the Unix
epoch when there is no ``start_at``: no wall clock, so no DST.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from cronsim import CronSim

from jobyard.durations import time_zone
from jobyard.schedules.spec import ScheduleSpec, cron_expression

MAX_FIRE_TIMES = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)  # cronsim going backwards starts one second before


def utc(value: datetime, what: str = "a time") -> datetime:
    """``value`` in UTC; a naive ``value`` is a programming error (:class:`ValueError`)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(UTC)


def next_fire(spec: ScheduleSpec, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after``; None when there is none
    (a one-off that is past, a cron expression with no match within 50 years)."""
    after = utc(after, "after")
    if spec.cron is not None:
        return next((t for t in _cron(spec, after) if t > after), None)
    if spec.every is not None:
        return _every_next(spec, after)
    return spec.at if spec.at is not None and spec.at > after else None


def fire_times(
    spec: ScheduleSpec, after: datetime, until: datetime, *, limit: int = MAX_FIRE_TIMES
) -> list[datetime]:
    """Every fire time in ``(after, until]``, oldest first, at most ``limit`` of them."""
    until = utc(until, "until")
    times: list[datetime] = []
    when = next_fire(spec, after)
    while when is not None and when <= until and len(times) < limit:
        times.append(when)
        when = next_fire(spec, when)
    return times


def latest_fire(spec: ScheduleSpec, after: datetime, until: datetime) -> datetime | None:
    """The last fire time in ``(after, until]``, or None; cheap however far apart they are."""
    after, until = utc(after, "after"), utc(until, "until")
    if spec.cron is not None:
        found = _cron_latest(spec, after, until)
    elif spec.every is not None:
        found = _every_latest(spec, until)
    else:
        found = spec.at if spec.at is not None and spec.at <= until else None
    return found if found is not None and found > after else None


# -- cron --------------------------------------------------------------------------
def _cron(spec: ScheduleSpec, start: datetime, *, reverse: bool = False) -> Iterator[datetime]:
    """cronsim's fire times from ``start`` (seconds resolution), converted to UTC."""
    expr = cron_expression(str(spec.cron))
    for local in CronSim(expr, start.astimezone(time_zone(spec.timezone)), reverse=reverse):
        yield local.astimezone(UTC)


def _cron_latest(spec: ScheduleSpec, after: datetime, until: datetime) -> datetime | None:
    # Going backwards, cronsim works on naive wall times during an autumn fold and
    # can miss a fire time of the first pass through the repeated hour: so take its
    # answer as a floor and walk forwards from there with next_fire (a few steps).
    back = next((t for t in _cron(spec, until + _SECOND, reverse=True) if t <= until), None)
    floor = back if back is not None and back > after else after
    forward = fire_times(spec, floor, until)
    if forward:
        return forward[-1]
    return back


# -- every -------------------------------------------------------------------------
def _grid(spec: ScheduleSpec) -> tuple[datetime, int]:
    """The interval's anchor and its step in microseconds (integers: no float drift)."""
    return spec.start_at or EPOCH, round(float(spec.every or 0) * 1_000_000)


def _every_next(spec: ScheduleSpec, after: datetime) -> datetime:
    anchor, step = _grid(spec)
    if spec.start_at is not None and after < anchor:
        return anchor
    steps = (after - anchor) // _MICROSECOND // step + 1
    return anchor + steps * step * _MICROSECOND


def _every_latest(spec: ScheduleSpec, until: datetime) -> datetime | None:
    anchor, step = _grid(spec)
    steps = (until - anchor) // _MICROSECOND // step
    if spec.start_at is not None and steps < 0:
        return None
    return anchor + steps * step * _MICROSECOND
