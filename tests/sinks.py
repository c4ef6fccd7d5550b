"""Running jobs with a :class:`~jobyard.runner.Runner` in tests: a sink that records, an end."""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import AbstractContextManager
from typing import Any

from jobyard.runner.local import Execution, Result
from tests.processes import TIMEOUT

RUN = uuid.uuid4().hex[:8]


def tok(name: str) -> str:
    """A job token unique to this test run: the runner kills by token."""
    return f"{name}-{RUN}"


class Recorder:
    """A Sink that keeps everything, in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.events: list[tuple[Any, ...]] = []

    def log(self, stream: str, line: str) -> None:
        self._add("log", stream, line)

    def progress(self, fraction: float | None, message: str | None) -> None:
        self._add("progress", fraction, message)

    def metric(self, name: str, value: float) -> None:
        self._add("metric", name, value)

    def details(self, data: dict[str, Any]) -> None:
        self._add("details", data)

    def output(self, nbytes: int) -> None:
        self._add("output", nbytes)

    def ended(self) -> None:
        self._add("ended")

    def controlled(self, control: str, error: str | None) -> None:
        self._add("controlled", control, error)

    def record(self, data: dict[str, Any]) -> bool:
        self._add("details", data)
        return True

    def together(self) -> AbstractContextManager[object]:
        return self._lock

    def _add(self, *event: Any) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return [e[1:] for e in self.events if e[0] == kind]

    def lines(self, stream: str) -> list[str]:
        return [line for s, line in self.of("log") if s == stream]

    @property
    def nbytes(self) -> int:
        return sum(n for (n,) in self.of("output"))


def finish(execution: Execution, timeout: float = TIMEOUT) -> Result:
    """The execution's result, once it has ended."""
    deadline = time.monotonic() + timeout
    while (result := execution.wait(0.1)) is None:
        assert time.monotonic() < deadline, "the job did not end in time"
    return result
