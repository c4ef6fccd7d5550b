"""Failed logins, counted per user name and per address, slow down password guessing.

A password's check is slow on purpose (Argon2id, ~0.1 s), and a failure is counted only
once it is known. So that a burst of parallel guesses cannot all be checked before the
first failure counts, the attempts of one name from one address take turns
(:meth:`Throttle.turn`), and the checks under way from an address count towards its
limit as failures would.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
        # The turns of each (name, address) and how many threads hold or wait for each.
        self._turns: dict[Key, tuple[threading.Lock, int]] = {}
        self._checking: dict[str, int] = {}  # attempts under way, by address

    @contextmanager
    def turn(self, name: str, address: str) -> Iterator[float]:
        """One attempt of ``name`` from ``address``, after those before it have counted.

        Yields the seconds to wait (:meth:`wait`'s, or 1 while as many checks are under
        way from the address as it has failures left); when it is 0 the attempt is under
        way until the block ends, and counts towards the address's limit until then."""
        key = (name, address)
        with self._lock:
            lock, holders = self._turns.get(key) or (threading.Lock(), 0)
            self._turns[key] = (lock, holders + 1)
        try:
            with lock:
                wait = self._admit(name, address)
                if wait:
                    yield wait
                    return
                try:
                    yield 0.0
                finally:
                    with self._lock:
                        left = self._checking.pop(address) - 1
                        if left:
                            self._checking[address] = left
        finally:
            with self._lock:
                lock, holders = self._turns[key]
                if holders == 1:
                    del self._turns[key]
                else:
                    self._turns[key] = (lock, holders - 1)

    def wait(self, name: str, address: str) -> float:
        """Seconds until ``name`` may try again from ``address``, by the failures counted
        (not the checks under way); 0 when it may now."""
        now = self._clock()
        with self._lock:
            return self._waits(name, address, now)

    def _admit(self, name: str, address: str) -> float:
        """:meth:`wait`, with the checks under way from ``address`` counted as failures;
        when it is 0, one more is under way (decided and counted at once)."""
        now = self._clock()
        with self._lock:
            wait = self._waits(name, address, now)
            failures = len(self._failures.get((_ANY_NAME, address), ()))
            checking = self._checking.get(address, 0)
            if not wait and checking >= PER_ADDRESS - failures:
                wait = 1.0  # as many checks under way as failures the address has left
            if not wait:
                self._checking[address] = checking + 1
            return wait

    def _waits(self, name: str, address: str, now: float) -> float:
        per_user = self._wait((name, address), PER_USER, now)
        return max(per_user, self._wait((_ANY_NAME, address), PER_ADDRESS, now))

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
