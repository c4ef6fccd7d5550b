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


class Horizon:
    """The oldest running and the next transaction id, as PostgreSQL would answer."""

    def __init__(self) -> None:
        self.oldest_running, self.next_id = 10, 12
        self.asked = 0

    def __call__(self) -> tuple[int, int]:
        self.asked += 1
        return self.oldest_running, self.next_id


def test_a_gap_is_stepped_over_once_every_transaction_that_could_fill_it_ended() -> None:
    clock, horizon = Clock(), Horizon()
    gaps = GapWait(3.0, clock, horizon=horizon)
    gaps.before_read()
    assert gaps.contiguous(3, [5, 7, 8]) == 3  # 4 and 6 may still commit
    assert horizon.asked == 0  # no gap was waited for: nothing asked
    clock.now += 0.05
    gaps.before_read()
    assert horizon.asked == 0  # too soon: a transaction may not have its id yet
    clock.now += 0.1
    gaps.before_read()  # marks the next id: 12
    assert gaps.contiguous(3, [5, 7, 8]) == 3
    horizon.oldest_running, horizon.next_id = 11, 13  # transaction 11 still runs
    gaps.before_read()
    assert gaps.contiguous(3, [5, 7, 8]) == 3
    horizon.oldest_running = 13  # every one begun before the mark has ended
    gaps.before_read()
    assert gaps.contiguous(3, [5, 7, 8, 10]) == 8  # long before the grace; 9 is new
    clock.now += 2.0
    assert gaps.contiguous(8, [10]) == 8  # a gap seen later waits anew
    clock.now += 3.0
    assert gaps.contiguous(8, [10]) == 10  # (after the grace, with no horizon asked)


def test_without_a_horizon_answer_a_gap_waits_the_grace() -> None:
    clock = Clock()
    gaps = GapWait(3.0, clock, horizon=lambda: None)
    assert gaps.contiguous(0, [2]) == 0
    clock.now += 1.0
    gaps.before_read()
    assert gaps.contiguous(0, [2]) == 0
    clock.now += 2.0
    assert gaps.contiguous(0, [2]) == 2
