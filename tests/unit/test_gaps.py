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
