"""One thread reads a process's pipes and notices its exit (through a pidfd).

Reading every pipe of a process from a single thread keeps the order of lines
within each stream and needs no lock around the per-stream state. When the
process exits, the owner kills what is left of its group and reaps it; the
pipes are then drained for a short, bounded time, so that a background process
that escaped the kill and still holds a pipe open cannot hang the job's end.
"""

from __future__ import annotations

import os
import selectors
import time
from collections.abc import Callable

from jobyard.runner.contract import Sink
from jobyard.runner.protocol import MAX_LINE, LineSplitter, Metric, Progress, parse_line

READ_SIZE = 65536
DRAIN_BOUND = 2.0  # seconds to keep reading after the process was reaped
TICK_FIRST, TICK_MAX = 0.02, 1.0


class Pump:
    """Reads registered pipes until EOF and reports the exit of one process."""

    def __init__(self, pid: int) -> None:
        self._pidfd = os.pidfd_open(pid)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._pidfd, selectors.EVENT_READ, None)
        self._readers: dict[int, Callable[[bytes], None]] = {}

    def add(self, fd: int, on_data: Callable[[bytes], None]) -> None:
        """Call ``on_data`` with each chunk read from ``fd``, and with ``b""`` at its end."""
        self._readers[fd] = on_data
        self._sel.register(fd, selectors.EVENT_READ, on_data)

    def run(
        self,
        on_exit: Callable[[], None],
        on_tick: Callable[[], None] | None = None,
        drain: float = DRAIN_BOUND,
    ) -> bool:
        """Pump until the process exited (``on_exit`` ran) and the pipes are drained.

        ``on_tick`` is called while the process lives, ``TICK_FIRST`` after the start and
        then less and less often (every second at most). Returns False when some pipe
        was still open after ``drain`` seconds.
        """
        deadline: float | None = None
        tick, next_tick = TICK_FIRST, time.monotonic() + TICK_FIRST  # none for a quick exit
        while deadline is None or (self._readers and time.monotonic() < deadline):
            now = time.monotonic()
            if deadline is None and on_tick is not None and now >= next_tick:
                on_tick()
                tick, next_tick = min(tick * 2, TICK_MAX), now + tick
            wake = next_tick if deadline is None and on_tick is not None else deadline
            timeout = None if wake is None else max(wake - time.monotonic(), 0.0)
            for key, _ in self._sel.select(timeout):
                if key.data is None:
                    self._sel.unregister(self._pidfd)
                    on_exit()
                    deadline = time.monotonic() + drain
                else:
                    self._read(key.fd)
        drained = not self._readers
        for fd in list(self._readers):
            self._close(fd)
        self._sel.close()
        os.close(self._pidfd)
        return drained

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except OSError:
            data = b""
        if data:
            self._readers[fd](data)
        else:
            self._close(fd)

    def _close(self, fd: int) -> None:
        self._sel.unregister(fd)
        self._readers.pop(fd)(b"")


class LineFeed:
    """A pipe's chunks → lines → a callback; ``b""`` flushes the unfinished line."""

    def __init__(self, on_line: Callable[[str], None], max_line: int = MAX_LINE) -> None:
        self._split = LineSplitter(max_line)
        self._on_line = on_line

    def __call__(self, data: bytes) -> None:
        lines = self._split.feed(data) if data else self._split.flush()
        for line in lines:
            self._on_line(line)


def count_and_split(sink: Sink, on_line: Callable[[str], None]) -> Callable[[bytes], None]:
    """A reader for a job's pipe that counts its bytes and splits it into lines."""
    feed = LineFeed(on_line)

    def on_data(data: bytes) -> None:
        if data:
            sink.output(len(data))
        feed(data)

    return on_data


def emit_stdout(sink: Sink, line: str) -> None:
    """A stdout line: a protocol message, or a log line."""
    message = parse_line(line)
    if isinstance(message, Progress):
        sink.progress(message.fraction, message.message)
    elif isinstance(message, Metric):
        sink.metric(message.name, message.value)
    else:
        sink.log("stdout", line)
