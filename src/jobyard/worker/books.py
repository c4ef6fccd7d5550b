"""What a run keeps of its attempt while it runs: its resource samples, bounded
(:class:`SampleBook`), and its log under the cap (:class:`LogCap`)."""

from __future__ import annotations

from collections import deque
from datetime import datetime

from jobyard.events.records import LogWritten
from jobyard.runner.contract import Sample
from jobyard.store.protocol import Storage

MAX_SAMPLES = 720  # stored per attempt; past it every other one goes and the stride doubles


class SampleBook:
    """CPU and memory samples of one attempt, bounded: when ``MAX_SAMPLES`` are stored,
    every other one is deleted and only every second sample is kept from then on.

    The latest CPU time and peak memory go on the job row with each write, so a live
    job shows them without a look at its samples.
    """

    def __init__(self, job_id: int, attempt: int) -> None:
        self.job_id, self.attempt = job_id, attempt
        self._waiting: list[tuple[datetime, float, int]] = []
        self._stride = 1
        self._seen = 0
        self._stored = 0
        self._started = False
        self._usage: tuple[float, int] | None = None  # (cpu, peak rss) not written yet

    @property
    def waiting(self) -> bool:
        """Whether samples are taken and not written yet."""
        return bool(self._waiting or self._usage)

    def take(self, at: datetime, sample: Sample, peak_rss: int) -> None:
        if self._seen % self._stride == 0:
            self._waiting.append((at, sample.cpu_seconds, sample.rss))
        self._seen += 1
        self._usage = (sample.cpu_seconds, peak_rss)

    def write(self, store: Storage) -> bool:
        """Store the waiting samples; False when the store refused them (the job is gone)."""
        if not (self._waiting or self._usage):
            return True
        if not self._started:
            store.monitor.forget_old_samples(self.job_id, self.attempt)
            self._started = True
        written = store.monitor.add_samples(self.job_id, self.attempt, self._waiting, self._usage)
        count, self._waiting, self._usage = len(self._waiting), [], None
        if not written:
            return False
        self._stored += count
        if self._stored >= MAX_SAMPLES:
            self._stored -= store.monitor.thin_samples(self.job_id, self.attempt)
            self._stride *= 2
        return True


CHUNKS = 256  # a tail is tracked in about this many pieces: it is kept within one of them


class LogCap:
    """Keeps a job's log under ``cap`` bytes: the first half, a marker, the newest half.

    Lines are counted when they arrive; once the head is full the next sequence number
    is kept for a marker line, and the tail is tracked in chunks of at most a 256th of
    the half (a line longer than that is a chunk of its own): the oldest chunks are
    deleted as new lines come, so the newest half is kept whole but for less than a
    chunk, in a few hundred entries whatever the lines (whole write batches of up to
    1,000 lines left a tail of a few lines when a batch was about the size of the half).
    """

    def __init__(self, cap: int) -> None:
        self.half = cap // 2
        self.cap = cap
        self.marker_seq: int | None = None
        self._head_bytes = 0
        self._chunk = max(self.half // CHUNKS, 1)
        self._chunks: deque[tuple[int, int, int]] = deque()  # (last seq, bytes, lines)
        self._tail_bytes = 0
        self._dropped_lines = 0
        self._dropped_bytes = 0
        self._pending: int | None = None  # tail lines up to this seq are still to be deleted

    def head_full(self, line: str) -> bool:
        """Count a line; True exactly once, when it fills the head."""
        if self.marker_seq is not None:
            return False
        self._head_bytes += stored_size(line) + 1
        return self._head_bytes > self.half

    def marker(self) -> str:
        return (
            f"[jobyard] log cap of {self.cap} bytes reached: {self._dropped_lines} lines "
            f"({self._dropped_bytes} bytes) dropped here; the oldest and newest lines are kept"
        )

    def written(self, lines: list[LogWritten]) -> None:
        if self.marker_seq is None:
            return
        size = count = 0
        for line in lines:
            if line.seq <= self.marker_seq:
                continue
            size += stored_size(line.line) + 1
            count += 1
            if size >= self._chunk:
                self._add(line.seq, size, count)
                size = count = 0
        if count:  # a chunk not full yet: the next lines join it
            self._add(lines[-1].seq, size, count)

    def _add(self, last_seq: int, size: int, count: int) -> None:
        self._tail_bytes += size
        if self._chunks and self._chunks[-1][1] < self._chunk:  # the last one is not full
            _, before, lines = self._chunks.pop()
            size, count = size + before, count + lines
        self._chunks.append((last_seq, size, count))

    def to_trim(self) -> tuple[int, int] | None:
        """``(marker_seq, upto_seq)`` while tail lines up to ``upto_seq`` are to be deleted."""
        while self._tail_bytes > self.half and len(self._chunks) > 1:
            last_seq, size, count = self._chunks.popleft()
            self._tail_bytes -= size
            self._dropped_bytes += size
            self._dropped_lines += count
            self._pending = last_seq
        if self._pending is None or self.marker_seq is None:
            return None
        return self.marker_seq, self._pending

    def trimmed(self, upto: int) -> None:
        if self._pending == upto:
            self._pending = None


def stored_size(line: str) -> int:
    """The bytes ``line`` takes stored (UTF-8): a character of undecodable output, U+FFFD,
    takes three. Counted in characters, a log of such lines was three times its cap."""
    return len(line) if line.isascii() else len(line.encode("utf-8", "surrogatepass"))
