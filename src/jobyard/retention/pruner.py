"""The pruner: applies a :class:`~jobyard.retention.policy.RetentionPolicy` in small batches.

In a server it runs on its own thread while this process leads the scheduler
(one pruner per deployment), every ``interval`` seconds, with a bounded number
of batches per pass and a short pause between batches: each batch is one short
transaction of at most ``batch`` rows, so running work never waits on it for
long. ``jobyard prune`` calls :meth:`Pruner.run_once` with no bound instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from jobyard.clock import utcnow
from jobyard.retention.policy import KINDS, RetentionPolicy
from jobyard.store.protocol import Pruned, RetentionStore

log = logging.getLogger(__name__)

# Jobs first: a job removed takes its logs and events, so the other kinds find less;
# runs right after, as a run goes only once its jobs have gone.
ORDER = ("jobs", "runs", "logs", "events", "samples", "notifications", "audit", "fires")
assert sorted(ORDER) == sorted(KINDS)


@dataclass
class Tally:
    """Rows removed per kind in one pass (``owned``: removed with them)."""

    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ORDER, 0))
    owned: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ORDER, 0))
    finished: bool = True  # False: the pass stopped at its bound, work is left


class Pruner:
    def __init__(
        self,
        store: RetentionStore,
        policy: RetentionPolicy,
        *,
        leading: Callable[[], bool] = lambda: True,
        batch: int = 500,
        pause: float = 0.05,
        max_batches: int | None = 200,
        interval: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.policy = policy
        self.batch = batch
        self.pause = pause
        self.max_batches = max_batches  # per kind and pass; None: until done
        self._leading = leading
        self._interval = interval
        self._clock = clock
        self._wait = min(interval, 5.0)  # the first pass waits for the server to settle
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime) -> Tally:
        """One pass over every kind, oldest rows first; each kind's ages measured from ``now``."""
        tally = Tally()
        for kind in ORDER:
            before = self.policy.cutoff(kind, now)
            if before is not None and not self._stop.is_set():
                self._prune(kind, before, now, tally)
        return tally

    def preview(self, now: datetime) -> dict[str, int | None]:
        """Rows each kind would remove now, counted alone; None for a kind kept for ever."""
        counts: dict[str, int | None] = {}
        for kind in ORDER:
            before = self.policy.cutoff(kind, now)
            counts[kind] = None if before is None else self.store.prunable(kind, before)
        return counts

    def _prune(self, kind: str, before: datetime, now: datetime, tally: Tally) -> None:
        verb: Callable[[datetime, int, datetime], Pruned] = getattr(self.store, f"prune_{kind}")
        batches = 0
        while True:
            done = verb(before, self.batch, now)
            tally.rows[kind] += done.rows
            tally.owned[kind] += done.owned
            batches += 1
            if not done.more:
                return
            if self.max_batches is not None and batches >= self.max_batches:
                tally.finished = False
                return
            if self.pause and self._stop.wait(self.pause):
                return

    # -- the background thread ----------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="pruner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self._wait):
            if not self._leading():
                continue
            try:
                tally = self.run_once(self._clock())
            except Exception:  # the database may be restarting; the next pass catches up
                log.warning("retention pass failed", exc_info=True)
                continue
            if any(tally.rows.values()) or any(tally.owned.values()):
                log.info("retention pass", extra={"removed": tally.rows, "with": tally.owned})
            # Work left over: come back soon rather than after a whole interval.
            self._wait = self._interval if tally.finished else min(self._interval, 1.0)
