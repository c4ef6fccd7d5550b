"""Schedule definitions: what a schedule fires, when, and what it does when late or busy.

A schedule comes from ``jobyard.yaml`` (``schedules: {name: {...}}``) or from the
API; :func:`parse_schedule` turns either into a frozen :class:`ScheduleSpec` or
raises :class:`ScheduleInvalid` naming every bad field. Datetimes in a spec are
stored as timezone-aware UTC; a naive one is read in the schedule's ``timezone``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from cronsim import CronSim, CronSimError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from jobyard.durations import Duration, time_zone
from jobyard.errors import Invalid
from jobyard.jobtypes.params import FieldError, Problems, dedupe, model_problems, summary
from jobyard.jobtypes.spec import NAME_RE

TARGETS = ("job_type", "workflow")
TRIGGERS = ("cron", "every", "at")
CRON_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
MIN_EVERY = 1.0
"""The shortest interval, in seconds: each fire creates a job, so finer is a mistake."""

_CRON_HINT = "use 5 fields (minute hour day-of-month month day-of-week) or @hourly, @daily, …"
_DATETIME_HINT = "give an ISO 8601 date-time, e.g. 2026-03-29T02:30:00+02:00"


class Overlap(StrEnum):
    """What a fire does while the previous run of the same schedule is still live."""

    SKIP = "skip"  # do not fire
    QUEUE = "queue"  # fire; the new run waits for the previous one to end
    ALLOW = "allow"  # fire regardless


class Misfire(StrEnum):
    """What happens to fire times missed while no scheduler ran."""

    RUN_ONCE = "run_once"  # collapse them into one run now
    SKIP = "skip"  # drop them; wait for the next fire time


class ScheduleInvalid(Invalid):
    """A schedule definition with problems; ``errors`` lists every one."""

    def __init__(self, errors: list[FieldError], detail: str = "the schedule is invalid") -> None:
        super().__init__(summary(detail, errors), errors)


# -- field checks ---------------------------------------------------------------
def cron_expression(text: str) -> str:
    """The 5-field expression of ``text`` (aliases like ``@daily`` expanded).

    Raises :class:`ValueError` for anything cronsim rejects or that is not 5 fields.
    """
    expr = CRON_ALIASES.get(text.strip().lower(), text)
    if len(expr.split()) != 5:
        raise ValueError(f"invalid cron expression {text!r}: {_CRON_HINT}")
    try:
        CronSim(expr, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(f"invalid cron expression {text!r}: {exc}") from exc
    return expr


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def not_a_timestamp(value: Any) -> Any:
    """A pydantic ``before`` check of a date-time: pydantic reads a number, or text that
    is one, as a Unix timestamp (seconds, or milliseconds past a size), too easy to get
    wrong (in YAML, in a query string) to take."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError(_DATETIME_HINT)
    return value


def _at_least_a_second(seconds: float) -> float:
    if seconds < MIN_EVERY:
        raise ValueError("must be at least 1s")
    return seconds


def _no_null(value: Any) -> Any:
    return {} if value is None else value


def localize(value: datetime, zone_name: str) -> datetime:
    """``value`` as aware UTC; a naive value is a wall time in ``zone_name``.

    A wall time skipped by a DST change raises :class:`ValueError`; one that occurs
    twice means its first occurrence (``fold=0``).
    """
    try:
        if value.tzinfo is None or value.utcoffset() is None:
            local = value.replace(tzinfo=time_zone(zone_name))
            if local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None) != value:
                skipped = f"{value.isoformat()} does not exist in {zone_name} (clocks skip it)"
                raise ValueError(skipped)
            value = local
        return value.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999, in UTC it is another year
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from None


Moment = Annotated[datetime, BeforeValidator(not_a_timestamp)]


# -- the spec ---------------------------------------------------------------------
class ScheduleSpec(BaseModel):
    """A named schedule: one target (``job_type`` or ``workflow``, with ``args``) and one
    trigger (``cron`` in ``timezone``, ``every`` from ``start_at``, or a one-off ``at``).

    Build one with :func:`parse_schedule`, which reports every problem at once.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    job_type: str | None = None
    workflow: str | None = None
    args: Annotated[dict[str, Any], BeforeValidator(_no_null)] = Field(default_factory=dict)
    cron: str | None = None
    timezone: str = "UTC"  # declared before start_at and at: their validators read it
    every: Annotated[Duration, AfterValidator(_at_least_a_second)] | None = None
    start_at: Moment | None = None
    at: Moment | None = None
    overlap: Overlap = Overlap.SKIP
    misfire: Misfire = Misfire.RUN_ONCE
    paused: bool = Field(default=False, strict=True)  # stored as given: true, not "true"

    @field_validator("name", "job_type", "workflow")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        if value is not None and not NAME_RE.fullmatch(value):
            raise ValueError("use 1-100 letters, digits, '_', '.' or '-', starting alphanumeric")
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            cron_expression(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        time_zone(value)
        return value

    @field_validator("start_at", "at")
    @classmethod
    def _to_utc(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        zone_name = info.data.get("timezone")
        if value is None or zone_name is None:  # a bad timezone is reported on its own
            return value
        return localize(value, zone_name)

    @model_validator(mode="after")
    def _check_shape(self) -> Self:
        problems = shape_problems(self.model_dump(include={*TARGETS, *TRIGGERS, "start_at"}))
        if problems:
            raise Problems(problems)
        return self

    @property
    def target(self) -> tuple[str, str]:
        """``("job_type", name)`` or ``("workflow", name)``."""
        if self.job_type is not None:
            return "job_type", self.job_type
        return "workflow", str(self.workflow)

    @property
    def trigger(self) -> str:
        """``"cron"``, ``"every"`` or ``"at"``."""
        return next(name for name in TRIGGERS if getattr(self, name) is not None)


def shape_problems(data: Mapping[str, Any]) -> list[FieldError]:
    """Problems of the whole: exactly one target, exactly one trigger, start_at with every."""
    targets = [key for key in TARGETS if data.get(key) is not None]
    triggers = [key for key in TRIGGERS if data.get(key) is not None]
    problems: list[FieldError] = []
    if not targets:
        message = "give job_type (a job type's name) or workflow (a workflow's name)"
        problems.append({"field": "job_type", "message": message})
    elif len(targets) > 1:
        problems.append({"field": "workflow", "message": "give either job_type or workflow"})
    if not triggers:
        problems.append({"field": "cron", "message": "give one trigger: cron, every or at"})
    for extra in triggers[1:]:
        message = f"give only one trigger of cron, every and at (also got {triggers[0]})"
        problems.append({"field": extra, "message": message})
    if data.get("start_at") is not None and "every" not in triggers:
        problems.append({"field": "start_at", "message": "applies to every only"})
    return problems


# -- parsing ----------------------------------------------------------------------
_KNOWN_KEYS = sorted(ScheduleSpec.model_fields)


def parse_schedule(name: str, data: Any) -> ScheduleSpec:
    """Build the schedule ``name`` from its definition (a YAML mapping or a JSON body).

    Raises :class:`ScheduleInvalid` listing every problem with its field.
    """
    if not isinstance(data, Mapping):
        message = "a schedule is a mapping: job_type or workflow, and cron, every or at"
        raise ScheduleInvalid([{"field": "", "message": message}])
    problems: list[FieldError] = []
    if "name" in data and data["name"] != name:
        problems.append({"field": "name", "message": f"does not match the schedule {name!r}"})
    try:
        spec = ScheduleSpec.model_validate({**data, "name": name})
    except ValidationError as exc:
        problems += _problems(exc)
        if any(error["loc"] for error in exc.errors()):  # so the whole was not checked
            problems += shape_problems(data)
    if problems:
        raise ScheduleInvalid(dedupe(problems))
    return spec


def _problems(exc: ValidationError) -> list[FieldError]:
    return model_problems(exc, _KNOWN_KEYS, {"datetime_": _DATETIME_HINT, "date_": _DATETIME_HINT})
