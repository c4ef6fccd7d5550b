"""The roster of workers: who is registered, in which state, running what; remote drains.

Workers register themselves in the database when they start and leave when
they stop cleanly; their heartbeat (every few seconds) keeps the row fresh. A
row whose heartbeat is older than the worker's lease timeout belongs to a
worker presumed dead: it shows as ``lost`` (its jobs are recovered by the lease
rules, not here). The API never signals a worker: a drain is a request stored
on the worker's row, which the worker reads at its next heartbeat — at once on
PostgreSQL, where the request also sends a NOTIFY.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from jobyard.clock import utcnow
from jobyard.errors import Conflict, NotFound
from jobyard.models import WorkerInfo
from jobyard.store.protocol import Storage


class WorkerState(StrEnum):
    RUNNING = "running"
    DRAINING = "draining"  # claims nothing new; hands back what still runs at its deadline
    LOST = "lost"  # no heartbeat within its lease timeout


@dataclass(frozen=True)
class WorkerView:
    """A worker as the API shows it: its registration, state and running jobs."""

    info: WorkerInfo
    state: WorkerState
    running: list[int]


def worker_state(info: WorkerInfo, now: datetime) -> WorkerState:
    """The state of a registered worker at ``now``."""
    if info.lost(now):
        return WorkerState.LOST
    if info.state == WorkerState.DRAINING or info.drain_requested_at is not None:
        return WorkerState.DRAINING
    return WorkerState.RUNNING


class Roster:
    def __init__(
        self,
        store: Storage,
        *,
        clock: Callable[[], datetime] = utcnow,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._wake = wake

    def all(self) -> list[WorkerView]:
        """Every registered worker, by name."""
        running = self._store.workers.worker_jobs()
        now = self._clock()
        return [
            WorkerView(info, worker_state(info, now), running.get(info.name, []))
            for info in self._store.workers.list_workers()
        ]

    def get(self, name: str) -> WorkerView:
        info = self._store.workers.get_worker(name)
        if info is None:
            raise NotFound(f"no worker named {name!r}")
        running = self._store.workers.worker_jobs([name]).get(name, [])
        return WorkerView(info, worker_state(info, self._clock()), running)

    def drain(self, name: str, timeout: float | None = None) -> WorkerView:
        """Ask the worker to drain: claim nothing more, hand back what runs after ``timeout``.

        ``timeout`` None keeps the worker's own drain timeout. A lost worker cannot
        drain (409): its jobs come back when its leases expire.
        """
        current = self.get(name)
        if current.state is WorkerState.LOST:
            raise Conflict(f"worker {name!r} is lost; its jobs are recovered", state="lost")
        if not self._store.workers.request_drain(name, timeout, self._clock()):
            raise NotFound(f"no worker named {name!r}")
        self._wake()  # an embedded worker looks at once
        return self.get(name)

    def forget(self, name: str) -> None:
        """Remove a lost worker's row; a live one must drain instead (409).

        Its jobs are not touched: those it still held come back when their leases expire.
        """
        current = self.get(name)
        if current.state is not WorkerState.LOST:
            state = current.state.value
            raise Conflict(f"worker {name!r} is {state}; drain it instead", state=state)
        self._store.workers.unregister_worker(name)
