"""Fault injection for tests: a process kills itself (``kill -9``) at a named point.

``JOBYARD_FAULT=<point>`` makes the process ``SIGKILL`` itself the first time it
reaches ``<point>``; ``<point>@<n>`` the ``n``-th time. The variable is read
once, at import; unset (always, outside tests) :func:`reach` returns after one
comparison with None. The points:

``claim.before_commit``
    a claim took at least one job; its transaction has not committed.
``end.before_commit`` / ``end.after_commit``
    the ends of jobs are written (a hand-back's requeue is one); their transaction has
    not / has just committed.
``end.settle``
    a worker's ends are written and the edges out of them counted off, in one
    transaction with its claim; it has not committed.
``workflow.advance``
    the edges out of ended jobs are being counted off (dependents released or
    blocked) in a transaction of their own (ends stored elsewhere than with a
    worker's claim); it has not committed.
``outbox.send``
    a notification was claimed for delivery and is about to be sent.
``outbox.sent``
    its receiver accepted it; the outcome is not recorded yet (it is sent again).

A kill there is what a power cut at that instant does: the tests then check
that nothing is lost and nothing runs twice while its worker lives.
"""

from __future__ import annotations

import os
import signal
import threading

VARIABLE = "JOBYARD_FAULT"
POINTS = frozenset(
    {
        "claim.before_commit",
        "end.before_commit",
        "end.after_commit",
        "end.settle",
        "workflow.advance",
        "outbox.send",
        "outbox.sent",
    }
)


def _armed(value: str | None) -> tuple[str, int] | None:
    """The point and the count of reaches it fires at, from the variable's value."""
    if not value:
        return None
    point, _, count = value.partition("@")
    if point not in POINTS:
        raise ValueError(f"{VARIABLE}: unknown point {point!r} (one of {sorted(POINTS)})")
    return point, int(count or 1)


_ARMED = _armed(os.environ.get(VARIABLE))
_lock = threading.Lock()
_reached = 0


def reach(point: str) -> None:
    """The process is at ``point``: it dies here if that fault is armed (and due)."""
    if _ARMED is None or _ARMED[0] != point:
        return
    global _reached
    with _lock:
        _reached += 1
        if _reached >= _ARMED[1]:
            os.kill(os.getpid(), signal.SIGKILL)
