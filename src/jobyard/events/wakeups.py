"""What a ``jobyard_jobs`` notification asks of a worker (PostgreSQL; pure).

The database says what happened in the payload (migration 0011): ``q:<queue>``
a job became ready in that queue (or a slot of a limited queue freed up),
``c:<worker>`` a control was recorded for a job of that worker, ``d:<worker>``
that worker was asked to drain. A worker looks only when the payload concerns
it. Anything else — an empty payload from an older trigger, the old ``drain``,
a name cut short, or ``None`` when the listener (re)connected and may have
missed notifications — makes it look for everything, as before.
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


def wakeup_for(payload: str | None, worker: str, queues: Collection[str] | None) -> Wakeup:
    """What the worker named ``worker``, serving ``queues`` (None: all), should look for."""
    tag, _, name = (payload or "").partition(":")
    if tag not in ("q", "c", "d") or not name or len(name) >= NAME_LIMIT:
        return EVERYTHING
    if tag == "q":
        return Wakeup(work=True) if queues is None or name in queues else NOTHING
    if name != worker:
        return NOTHING
    return Wakeup(controls=True) if tag == "c" else Wakeup(drain=True)
