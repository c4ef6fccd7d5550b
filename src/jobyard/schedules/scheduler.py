"""The scheduler loop: due jobs become ready, jobs of dead workers are recovered.

Each pass is :meth:`Scheduler.run_once` with ``now`` passed in, so tests drive
time. Both of its actions are compare-and-set updates, so two schedulers on
one database cannot apply the same change twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from jobyard import outcomes
from jobyard.clock import utcnow
from jobyard.dependencies import Dependencies
from jobyard.models import Job
from jobyard.schedules.firing import Firing
from jobyard.schedules.leader import IDLE_LIMIT, Leadership
from jobyard.store import Store, outage

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        store: Store,
        *,
        interval: float = 0.5,
        on_ready: Callable[[], None] = lambda: None,
        deps: Dependencies | None = None,
        on_terminal: Callable[[int], None] | None = None,
        firing: Firing | None = None,
        clock: Callable[[], datetime] = utcnow,
        sweep_every: float = 30.0,
        lease_check_every: float = 0.0,
        on_lost: Callable[[Job], None] = lambda job: None,
    ) -> None:
        self.store = store
        self.interval = interval
        self._on_ready = on_ready
        self._deps = deps or Dependencies(store, wake=on_ready, clock=clock)
        self._on_terminal = on_terminal or (lambda job_id: self._deps.settle([job_id]))
        self._clock = clock
        self._sweep_every = sweep_every
        self._last_sweep: datetime | None = None
        # A lease lasts tens of seconds: looking for expired ones at every pass (twice a
        # second) costs a query each time and finds them hardly any sooner.
        self._lease_check_every = lease_check_every
        self._last_lease_check: datetime | None = None
        self._firing = firing
        self._on_lost = on_lost  # hears of a job that ended for good with its worker lost
        self.leadership = Leadership(store)
        self.leading = False
        self._passed = 0.0  # monotonic time the last pass ended (without an error)
        # Failed passes (the database may be away): told once, then every few seconds.
        self._outage = outage.OutageLog(
            log, "scheduler pass failed", "scheduler passes work again", {}
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime) -> None:
        # Lost jobs first: a schedule whose last run was one must not skip a fire for it.
        if _due(self._last_lease_check, now, self._lease_check_every):
            self._last_lease_check = now
            self._recover_lost(now)
        if self._firing is not None:
            self.leading = self.leadership.held()
            # Only the leader fires schedules. A fire that waits for a job whose lease
            # lapsed since the last check has it recovered at the next pass, then fires.
            if self.leading and self._firing.run_once(now):
                self._last_lease_check = None
        if self.store.queue.promote_due(now):
            self._on_ready()
        if _due(self._last_sweep, now, self._sweep_every):
            # A process that died between ending a job and settling its dependents
            # leaves them waiting; this finds them.
            for blocked in self._deps.sweep():  # its workflow run may end with it
                self._on_terminal(blocked)
            self._last_sweep = now
        self._passed = time.monotonic()

    @property
    def leads(self) -> bool:
        """Whether it leads and does a leader's work: a pass that fails, or is held in a
        statement, fires nothing. Past the lead's idle limit without a pass the
        database ends its lead anyway (:mod:`jobyard.schedules.leader`)."""
        return self.leading and time.monotonic() - self._passed < IDLE_LIMIT

    def _recover_lost(self, now: datetime) -> None:
        """End or requeue the live jobs whose lease expired (their worker is lost)."""
        for job in self.store.queue.expired_leases(now):
            why = f"its worker {job.worker} did not renew the lease in time"
            end = outcomes.lost_end(job, now, why, lapsed=True)
            [written] = self.store.jobs.end_jobs([end], now)
            if written is None:
                continue
            ended = written.job
            log.warning("lease expired; worker lost", extra={"job": job.id, "worker": job.worker})
            self._on_ready()
            if ended.state.terminal:
                self._on_lost(ended)
                self._on_terminal(ended.id)

    def start(self) -> None:
        self._passed = time.monotonic()  # a first pass has its minute too
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.leading = False
        self.leadership.release()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once(self._clock())
            except Exception as exc:  # the database may be restarting; try again next pass
                self.leading = False  # until a pass says so again
                self._outage.failed(exc, trace=True)
            else:
                self._outage.worked()
            self._stop.wait(self.interval)


def _due(last: datetime | None, now: datetime, every: float) -> bool:
    """Whether a check done at ``last`` (None: never) is due again at ``now``."""
    return last is None or (now - last).total_seconds() >= every
