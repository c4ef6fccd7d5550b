"""Reading the event log in id order when ids can commit out of order.

Two transactions may take ids 7 and 8 and commit 8 first: a reader that sees
8 must wait for 7 before it moves past it, or it would never see 7. A
rolled-back transaction leaves its id unused for good, so the wait is bounded:
after ``grace`` seconds the reader steps over the gap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime


class GapWait:
    def __init__(self, grace: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace = grace
        self._clock = clock
        self._since: float | None = None  # when the gap being waited for was first seen

    def contiguous(self, after: int, ids: Iterable[int]) -> int:
        """The highest of ``ids`` (ascending, all > ``after``) reachable without an open gap."""
        upto = after
        for event_id in ids:
            if event_id == upto + 1:
                self._since = None
            elif not self._waited_enough():
                break
            upto = event_id
        return upto

    def _waited_enough(self) -> bool:
        now = self._clock()
        if self._since is None:
            self._since = now
        if now - self._since < self.grace:
            return False
        self._since = None
        return True


def settled(latest: Sequence[tuple[int, datetime]], before: datetime) -> int:
    """Where a reader may start so that no event still being committed is skipped (pure).

    ``latest`` are the newest (id, time) pairs, oldest first. A missing id among
    the events written since ``before`` may belong to a transaction that has not
    committed yet: start just below the first such gap (a reader waits for it,
    like :class:`GapWait`). Gaps among older events are settled for good.
    """
    if not latest:
        return 0
    start = max((i for i, (_, at) in enumerate(latest) if at < before), default=0)
    upto = latest[start][0]
    for event_id, _ in latest[start + 1 :]:
        if event_id != upto + 1:
            break
        upto = event_id
    return upto
