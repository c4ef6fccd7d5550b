"""The log cap keeps the head and the newest tail, with a marker between them."""

from __future__ import annotations

from datetime import UTC, datetime

from jobyard.events.records import LogWritten
from jobyard.worker.books import LogCap

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_under_the_cap_nothing_happens() -> None:
    cap = LogCap(1000)
    assert not any(cap.head_full("x" * 9) for _ in range(40))
    assert cap.to_trim() is None


def test_the_head_fills_once_then_tail_batches_are_dropped_oldest_first() -> None:
    cap = LogCap(200)  # 100 bytes of head, 100 of tail
    filled = [cap.head_full("x" * 9) for _ in range(11)]  # 10 bytes a line
    assert filled == [False] * 10 + [True]
    cap.marker_seq = 12
    seq = 12
    for _ in range(4):  # four batches of five 10-byte lines: 200 bytes of tail
        batch = [
            LogWritten(at=NOW, seq=seq + i, stream="stdout", line="y" * 9) for i in range(1, 6)
        ]
        seq += 5
        cap.written(batch)
    assert cap.to_trim() == (12, 22)  # the two oldest batches go: 100 bytes are left
    assert "10 lines (100 bytes) dropped" in cap.marker()
    assert cap.to_trim() == (12, 22)  # still pending until written
    cap.trimmed(22)
    assert cap.to_trim() is None


def test_the_cap_counts_the_bytes_a_line_is_stored_in() -> None:
    """Undecodable output is stored as U+FFFD, three bytes a character: counted in
    characters, a log of such lines was three times its cap."""
    cap = LogCap(200)  # 100 bytes of head
    filled = [cap.head_full("\ufffd" * 3) for _ in range(11)]  # 10 bytes a line, stored
    assert filled == [False] * 10 + [True]
    cap.marker_seq = 12
    tail = [LogWritten(at=NOW, seq=13 + i, stream="stdout", line="é" * 19) for i in range(10)]
    cap.written(tail[:5])
    cap.written(tail[5:])  # two batches of 5 lines of 39 bytes: 390 bytes of tail, over its 100
    assert cap.to_trim() == (12, 20)  # the first batch, then the second's oldest three
    assert "8 lines (312 bytes) dropped" in cap.marker()


def test_the_newest_half_is_kept_whole_when_a_batch_is_about_its_size() -> None:
    """Whole batches only: a batch of about half the cap went whole, and the tail kept was
    the few lines written after it (a 20 kB cap kept 2 lines of 10,000). It is kept to
    within a chunk (a 256th of the half) now, in a bounded number of entries."""
    cap = LogCap(20_000)
    cap.marker_seq = 1
    seq = 1
    for _ in range(10):  # batches of 1,000 lines of 10 bytes: each 10 kB, the whole half
        batch = [
            LogWritten(at=NOW, seq=seq + i, stream="stdout", line="z" * 9) for i in range(1, 1001)
        ]
        cap.written(batch)
        seq += 1000
        cap.to_trim()
    cap.written([LogWritten(at=NOW, seq=seq + i, stream="stdout", line="z" * 9) for i in (1, 2)])
    marker_seq, upto = cap.to_trim() or (0, 0)
    kept = (seq + 2 - upto) * 10  # bytes of the lines after upto
    assert 10_000 - 10_000 // 256 < kept <= 10_000
    assert marker_seq == 1
    assert len(cap._chunks) <= 2 * 256


def test_a_tail_of_empty_lines_is_tracked_in_few_entries() -> None:
    """An entry a line cost 16 bytes for a line stored in 1: a job's output could fill the
    worker's memory many times over what it kept."""
    cap = LogCap(2_000_000)
    cap.marker_seq = 0
    for start in range(1, 2_000_001, 1000):
        cap.written(
            [LogWritten(at=NOW, seq=start + i, stream="stdout", line="") for i in range(1000)]
        )
        cap.to_trim()
    assert len(cap._chunks) <= 256 + 1
