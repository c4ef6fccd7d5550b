"""Typed results of the queues, schedules and samples endpoints (frozen data from JSON)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from jobyard.client.models import _only, parse_time


@dataclass(frozen=True)
class QueueInfo:
    """A queue: ``paused`` stops dispatch (running jobs go on); ``jobs`` counts by state."""

    name: str
    paused: bool
    max_running: int | None = None
    jobs: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_only(cls, data))


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule; ``target`` is ``{"job_type": name}`` or ``{"workflow": name}``."""

    name: str
    source: str
    target: dict[str, str]
    args: dict[str, Any]
    trigger: str
    description: str
    timezone: str
    overlap: str
    misfire: str
    paused: bool
    # file: the configuration file's ``paused``; api: a pause or resume; None: an older server
    paused_by: str | None = None
    next_fire: datetime | None = None
    last_fire: datetime | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_only(cls, data, ("next_fire", "last_fire")))


@dataclass(frozen=True)
class Sample:
    """CPU time so far and resident memory (bytes) of a job's process tree at one moment."""

    attempt: int
    at: datetime
    cpu_seconds: float
    rss: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        at = parse_time(data["at"])
        assert at is not None
        return cls(int(data["attempt"]), at, float(data["cpu_seconds"]), int(data["rss"]))
