"""What a ``jobyard_jobs`` notification asks of a worker (PostgreSQL; pure).

The database says what happened in the payload (migrations 0011, 0018):
``q:<queue>`` a job that needs no tag became ready in that queue (or a slot of a
limited queue freed up, or the queue was resumed), ``t:<route>:<queue>`` one
that needs the tags of ``route`` (:mod:`jobyard.routing`; it holds no ``:``),
``c:<worker>`` a control was recorded for a job of that worker, ``d:<worker>``
that worker was asked to drain. Nothing is sent for a job of a paused queue. A
worker looks only when the payload concerns it: its queue, and a route its tags
cover. Anything else — an empty payload from an older trigger, the old
``drain``, a name cut short, or ``None`` when the listener (re)connected and may
have missed notifications — makes it look for everything, as before.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

CHANNEL = "jobyard_jobs"
NAME_LIMIT = 1000  # characters of a name in a payload (NOTIFY takes < 8,000 bytes)


@dataclass(frozen=True)
class Wakeup:
    work: bool = False  # look for jobs to claim
    controls: bool = False  # look for control intents to apply
    drain: bool = False  # look for a drain request

    def __bool__(self) -> bool:
        return self.work or self.controls or self.drain


EVERYTHING = Wakeup(work=True, controls=True, drain=True)
NOTHING = Wakeup()


def wakeup_for(
    payload: str | None,
    worker: str,
    queues: Collection[str] | None,
    routes: Collection[str] = ("",),
) -> Wakeup:
    """What the worker named ``worker``, serving ``queues`` (None: all) and able to run
    the jobs of ``routes`` (:func:`jobyard.routing.routes_for` its tags), should look for."""
    tag, _, name = (payload or "").partition(":")
    route = ""
    if tag == "t":
        route, _, name = name.partition(":")
    if tag not in ("q", "t", "c", "d") or not name or len(name) >= NAME_LIMIT:
        return EVERYTHING
    if tag in ("q", "t"):
        served = queues is None or name in queues
        return Wakeup(work=True) if served and route in routes else NOTHING
    if name != worker:
        return NOTHING
    return Wakeup(controls=True) if tag == "c" else Wakeup(drain=True)
