"""Registered workers, in memory."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import datetime
from typing import Any

from jobyard.models import WorkerInfo
from jobyard.states import LIVE
from jobyard.store.memory.tables import Part, utc


class MemoryWorkers(Part):
    """:class:`~jobyard.store.protocol.WorkerStore` in memory."""

    def register_worker(self, info: WorkerInfo) -> None:
        with self._t.lock:
            self._t.workers[info.name] = _worker(info)

    def worker_heartbeat(self, name: str, now: datetime) -> None:
        self._change(name, heartbeat_at=utc(now))

    def unregister_worker(self, name: str) -> None:
        with self._t.lock:
            self._t.workers.pop(name, None)

    def get_worker(self, name: str) -> WorkerInfo | None:
        with self._t.lock:
            info = self._t.workers.get(name)
        return None if info is None else _worker(info)

    def list_workers(self) -> list[WorkerInfo]:
        with self._t.lock:
            return [_worker(info) for _, info in sorted(self._t.workers.items())]

    def worker_jobs(self, names: Collection[str] | None = None) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        with self._t.lock:
            for job in self._t.where(lambda job: job.state in LIVE and job.worker is not None):
                if names is None or job.worker in names:
                    found.setdefault(job.worker or "", []).append(job.id)
        return found

    def request_drain(self, name: str, timeout: float | None, now: datetime) -> bool:
        return self._change(name, drain_requested_at=utc(now), drain_timeout=timeout)

    def set_worker_state(self, name: str, state: str) -> None:
        self._change(name, state=state)

    def _change(self, name: str, **values: Any) -> bool:
        with self._t.lock:
            if name not in self._t.workers:
                return False
            self._t.workers[name] = dataclasses.replace(self._t.workers[name], **values)
            return True


def _worker(info: WorkerInfo) -> WorkerInfo:
    times = {
        name: utc(getattr(info, name))
        for name in ("started_at", "heartbeat_at", "drain_requested_at")
    }
    return dataclasses.replace(info, queues=list(info.queues), tags=list(info.tags), **times)
