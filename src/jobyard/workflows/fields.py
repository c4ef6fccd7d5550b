"""Checks of single workflow fields: each returns the parsed value or raises ``ValueError``.

A :class:`~jobyard.jobtypes.params.Problems` (a ``ValueError``) carries several problems
below the field, e.g. ``retries.max`` or ``depends_on.1``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, time
from typing import Any

from cronsim import CronSim, CronSimError
from pydantic import ValidationError

from jobyard.durations import parse_duration, time_zone
from jobyard.jobtypes.params import Problems
from jobyard.jobtypes.spec import (
    NAME_RE,
    PRIORITY_LIMIT,
    RetriesSpec,
    SlaSpec,
    pydantic_problems,
)
from jobyard.spelling import did_you_mean

# no '.' (unlike job type names): a node's name is one part of a dotted field path
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
NAME_RULE = "use 1-100 letters, digits, '_' or '-', starting with a letter or digit"
_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})")


def undeclared(args: Iterable[str], declared: Collection[str]) -> list[tuple[str, str]]:
    """``(key, message)`` for each of ``args`` that no node's type declares (a typo, most
    likely): the workflow's ``args`` when its file loads, a run's when it starts."""
    known = sorted(declared)
    return [
        (key, f"no node's job type declares this param{did_you_mean(key, known)}")
        for key in args
        if key not in declared
    ]


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def mapping(value: Any) -> dict[str, Any]:
    """A mapping with string keys (``None``, an empty YAML value, is an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError("must be a mapping of names to values")
    return {str(key): item for key, item in value.items()}


def args(value: Any) -> dict[str, Any]:
    """Arguments: a mapping (an unquoted ``2026-01-31`` in it is text as written: the
    configuration's reader keeps YAML's dates as text)."""
    return mapping(value)


def timezone(value: Any) -> str:
    """An IANA time zone name such as ``Europe/Berlin``."""
    name = text(value)
    time_zone(name)
    return name


def time_of_day(value: Any) -> time:
    """``"HH:MM"`` on a 24-hour clock."""
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 06:00 as the base-60 number 360
        raise ValueError('quote the time, e.g. at: "06:00" (unquoted, YAML reads it as a number)')
    match = _TIME_OF_DAY.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f'invalid time {value!r}: use "HH:MM" on a 24-hour clock, e.g. "06:00"')
    return time(int(match[1]), int(match[2]))


def cron(value: Any) -> str:
    """A 5-field cron expression: minute hour day-of-month month day-of-week."""
    expression = text(value)
    if len(expression.split()) != 5:
        raise ValueError(
            f"invalid cron expression {expression!r}: give 5 fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 2 * * *'"
        )
    try:
        CronSim(expression, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise ValueError(f"invalid cron expression {expression!r}: {exc}") from None
    return expression


def queue(value: Any) -> str:
    name = text(value)
    if not NAME_RE.fullmatch(name):
        raise ValueError("a queue name is letters, digits, '_', '.', '-'")
    return name


def priority(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("must be a whole number")
    if abs(value) > PRIORITY_LIMIT:
        raise ValueError(f"must be from -{PRIORITY_LIMIT:,} to {PRIORITY_LIMIT:,}")
    return value


def timeout(value: Any) -> float:
    """A duration in seconds: a number or a string like ``1h30m``; more than 0."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be more than 0")
    return seconds


def retries(value: Any) -> RetriesSpec:
    """A number (``max``) or ``{max, backoff, initial, max_delay}``, as on a job type."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"max": value}
    try:
        return RetriesSpec.model_validate(value)
    except ValidationError as exc:
        raise Problems(pydantic_problems(exc)) from None


def sla(value: Any) -> SlaSpec:
    """Budgets for this node's job, as on a job type (they replace the type's)."""
    try:
        return SlaSpec.model_validate(value)
    except ValidationError as exc:
        raise Problems(pydantic_problems(exc)) from None


def depends_on(value: Any) -> tuple[str, ...]:
    """Node names: a list, or one name; repeats are dropped."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise ValueError("must be a list of node names")
    problems = [
        {"field": str(index), "message": "must be a node name"}
        for index, item in enumerate(value)
        if not isinstance(item, str)
    ]
    if problems:
        raise Problems(problems)
    return tuple(dict.fromkeys(value))
