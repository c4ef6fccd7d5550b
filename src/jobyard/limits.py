"""Cluster-wide limits: at most ``max_running`` jobs of a queue, or of a job type, at once.

A limit counts the jobs that hold a slot — ``running`` and ``paused`` ones (a
paused job keeps its slot, so that resuming it never overshoots). The limits
live in the database (the ``limits`` table), because every worker on every host
must apply the same numbers: those of ``jobyard.yaml`` are written there when a
process with that file starts, those of job types created through the API when
the type is stored. The claim enforces them (:mod:`jobyard.store.slots`); this
module holds the data and the pure decision of which candidates fit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Scope(StrEnum):
    QUEUE = "queue"
    TYPE = "type"


Key = tuple[Scope, str]


@dataclass(frozen=True)
class Limit:
    """At most ``max_running`` jobs of the queue or type ``name`` hold a slot at once."""

    scope: Scope
    name: str
    max_running: int

    @property
    def key(self) -> Key:
        return (self.scope, self.name)


class HasMaxRunning(Protocol):
    @property
    def max_running(self) -> int | None: ...


def limits_of(
    queues: Mapping[str, HasMaxRunning], job_types: Mapping[str, HasMaxRunning]
) -> list[Limit]:
    """The limits a configuration declares (queues and types without one are left out)."""
    found = [
        Limit(scope, name, item.max_running)
        for scope, items in ((Scope.QUEUE, queues), (Scope.TYPE, job_types))
        for name, item in items.items()
        if item.max_running is not None
    ]
    return sorted(found, key=lambda limit: limit.key)


class Candidate(Protocol):
    """A claimable job as the claim sees it."""

    @property
    def id(self) -> int: ...
    @property
    def queue(self) -> str: ...
    @property
    def type(self) -> str: ...


def keys_of(job: Candidate) -> tuple[Key, Key]:
    """The two scopes a job counts against (each only if it is limited)."""
    return (Scope.QUEUE, job.queue), (Scope.TYPE, job.type)


def pick(candidates: Iterable[Candidate], free: dict[Key, int]) -> list[int]:
    """The ids to claim, in order: each job whose limited scopes all have a free slot.

    ``free`` holds the free slots of every limited scope that may be claimed from
    (a scope not in it is unlimited); it is decremented for each job taken.
    """
    taken = []
    for job in candidates:
        limited = [key for key in keys_of(job) if key in free]
        if all(free[key] > 0 for key in limited):
            for key in limited:
                free[key] -= 1
            taken.append(job.id)
    return taken
