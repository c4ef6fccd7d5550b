"""Stepping over event ids that never commit, after waiting for them a while."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobyard.events.gaps import GapWait, settled


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_contiguous_ids_are_taken_and_a_gap_is_waited_for_then_stepped_over() -> None:
    clock = Clock()
    gaps = GapWait(3.0, clock)
    assert gaps.contiguous(0, [1, 2, 3]) == 3
    assert gaps.contiguous(3, [5, 6]) == 3  # 4 may still commit
    clock.now += 2.9
    assert gaps.contiguous(3, [5, 6]) == 3
    clock.now += 0.2
    assert gaps.contiguous(3, [5, 6]) == 6  # 4 is given up after the grace


def test_a_gap_that_fills_in_time_resets_the_wait() -> None:
    clock = Clock()
    gaps = GapWait(3.0, clock)
    assert gaps.contiguous(0, [2]) == 0
    clock.now += 2.0
    assert gaps.contiguous(0, [1, 2, 4]) == 2  # 1 came; a new gap before 4 starts now
    clock.now += 2.0
    assert gaps.contiguous(2, [4]) == 2  # not yet: this gap is only 2 s old
    clock.now += 1.5
    assert gaps.contiguous(2, [4]) == 4


def test_a_reader_starts_below_a_recent_gap_and_over_an_old_one() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    old, new = t - timedelta(seconds=10), t + timedelta(seconds=1)
    assert settled([], t) == 0
    assert settled([(1, old), (2, old), (3, new)], t) == 3
    assert settled([(1, old), (4, old), (5, new), (7, new)], t) == 5  # 6 may still commit
    assert settled([(1, old), (3, new)], t) == 1  # 2 is recent enough to wait for
    assert settled([(5, old), (9, old)], t) == 9  # gaps among old events are settled


class Transactions:
    """Transaction ids as PostgreSQL would give them: ``running`` are still open."""

    def __init__(self) -> None:
        self.next_id, self.running = 12, {10, 11}
        self.marks = 0

    def mark(self) -> int:
        self.marks += 1
        self.next_id += 1
        return self.next_id - 1

    def oldest_running(self) -> int:
        return min(self.running, default=self.next_id)


def test_a_gap_is_stepped_over_once_every_transaction_that_could_fill_it_ended() -> None:
    clock, transactions = Clock(), Transactions()
    gaps = GapWait(3.0, clock, transactions=transactions)
    gaps.before_read()
    assert gaps.contiguous(3, [5, 7, 8]) == 3  # 4 and 6 may still commit
    assert transactions.marks == 0  # no gap was waited for: nothing asked
    clock.now += 0.1
    gaps.before_read()
    assert transactions.marks == 0  # too soon: a transaction may not have its id yet
    clock.now += 0.15
    gaps.before_read()  # marks: 12
    assert transactions.marks == 1
    assert gaps.contiguous(3, [5, 7, 8]) == 3
    transactions.running = {11, 13}  # 10 ended; 11 (which may hold 4 or 6) still runs
    gaps.before_read()
    assert gaps.contiguous(3, [5, 7, 8]) == 3
    transactions.running = {13}  # begun after the mark: it cannot hold 4 or 6
    gaps.before_read()
    assert gaps.contiguous(3, [5, 7, 8, 10]) == 8  # long before the grace; 9 is new
    assert transactions.marks == 1
    clock.now += 2.0
    assert gaps.contiguous(8, [10]) == 8  # a gap seen later waits anew
    clock.now += 3.0
    assert gaps.contiguous(8, [10]) == 10  # (after the grace, with no new mark asked)


def test_without_transactions_a_gap_waits_the_grace() -> None:
    clock = Clock()
    gaps = GapWait(3.0, clock)
    assert gaps.contiguous(0, [2]) == 0
    clock.now += 1.0
    gaps.before_read()
    assert gaps.contiguous(0, [2]) == 0
    clock.now += 2.0
    assert gaps.contiguous(0, [2]) == 2


def test_the_gaps_one_read_saw_are_stepped_over_after_one_grace_together() -> None:
    """Each gap waited its own grace after the one before: the events of five removed
    jobs held every live stream on MariaDB for 15 s (a client's wait timed out)."""
    clock = Clock()
    gaps = GapWait(3.0, clock)
    assert gaps.contiguous(0, [1, 3, 5, 7, 9, 11]) == 1
    clock.now += 3.1
    assert gaps.contiguous(1, [3, 5, 7, 9, 11]) == 11
    assert gaps.contiguous(11, [13]) == 11  # a gap seen later waits its own grace
    clock.now += 3.1
    assert gaps.contiguous(11, [13]) == 13
