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
from typing import Protocol


class Transactions(Protocol):
    """The database's transaction ids (PostgreSQL's), as :class:`GapWait` asks them."""

    def mark(self) -> int:
        """A transaction id given now: every one given before it is lower."""
        ...

    def oldest_running(self) -> int:
        """The oldest transaction id still running (higher than every one ended)."""
        ...


MARK_AFTER = 0.2  # seconds after a gap is seen before the transactions are marked


class GapWait:
    """Which ids a reader of the event log may move past: a missing one only once it
    cannot commit any more.

    Without more to go on, that is after ``grace`` seconds. On PostgreSQL the
    ``transactions`` tell sooner. A missing id was taken by a transaction that had
    begun by the time the gap was seen, and that has its transaction id a moment
    later (it is given with its first row, in the statement that took the event id):
    :data:`MARK_AFTER` later, a new transaction id (the mark) is higher than its.
    Once the oldest transaction still running is above the mark, every one of them
    has ended, so a read begun after that sees whatever of them committed, and what
    it still misses was rolled back or deleted (a removed job's events): the reader
    moves on in a fraction of a second, where it waited the whole grace.
    :meth:`before_read` asks just before each read, so that its answer holds for it.
    """

    def __init__(
        self,
        grace: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        transactions: Transactions | None = None,
    ) -> None:
        self.grace = grace
        self._clock = clock
        self._transactions = transactions
        self._since: float | None = None  # when the gap being waited for was first seen
        self._cover = 0  # the highest id of the read that saw it: gaps below it are its
        self._mark: int | None = None  # a transaction id given MARK_AFTER later
        self._ended = False  # every transaction begun before the mark has ended

    def before_read(self) -> None:
        """Ask whether the gaps waited for can still fill (a read of the log follows)."""
        if self._transactions is None or self._since is None or self._ended:
            return
        if self._clock() - self._since < MARK_AFTER:
            return
        if self._mark is None:
            self._mark = self._transactions.mark()
        elif self._transactions.oldest_running() > self._mark:
            self._ended = True

    def contiguous(self, after: int, ids: Iterable[int]) -> int:
        """The highest of ``ids`` (ascending, all > ``after``) reachable without an open gap."""
        upto = after
        seen = list(ids)
        for event_id in seen:
            if event_id != upto + 1 and not self._settled(event_id, seen[-1]):
                break
            upto = event_id
            if self._since is not None and upto >= self._cover:
                self._forget()  # the gaps it waited for are behind: a new one starts anew
        return upto

    def _settled(self, event_id: int, highest: int) -> bool:
        """Whether the ids missing before ``event_id`` can be stepped over now."""
        now = self._clock()
        if self._since is None:
            self._since, self._cover = now, highest
        if event_id <= self._cover and (self._ended or now - self._since >= self.grace):
            # Every gap of the read that saw it (forgotten once past it): each was seen as
            # long ago. They waited one grace in all, not one each (the gaps a removed
            # job's events leave are many, and for good: on MariaDB each held every
            # stream a grace's time).
            return True
        if event_id > self._cover and now - self._since >= self.grace:
            self._forget()  # a gap first seen by a later read waits its own grace
            return self._settled(event_id, highest)
        return False

    def _forget(self) -> None:
        self._since, self._mark, self._ended = None, None, False


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
