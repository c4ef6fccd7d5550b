"""Failed logins, counted per user name and per address, slow down password guessing."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW = 15 * 60.0  # seconds over which failures count
PER_USER = 10  # failures of one name from one address before it is locked out
PER_ADDRESS = 50  # failures from one address, whatever the names


# The key of an address's failures whatever the name: not a string, so that no user
# name (HTTP Basic allows an empty one) can share it.
_ANY_NAME = None
Key = tuple[str | None, str]


class Throttle:
    """In memory, per process: each API node counts the failures it saw."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[Key, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, name: str, address: str) -> float:
        """Seconds until ``name`` may try again from ``address``; 0 when it may now."""
        now = self._clock()
        with self._lock:
            waits = [
                self._wait(key, limit, now)
                for key, limit in (((name, address), PER_USER), ((_ANY_NAME, address), PER_ADDRESS))
            ]
        return max(waits)

    def failed(self, name: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in ((name, address), (_ANY_NAME, address)):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop((name, address), None)

    def _wait(self, key: Key, limit: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and times[0] <= now - WINDOW:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        return times[0] + WINDOW - now if len(times) >= limit else 0.0
