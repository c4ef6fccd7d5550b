"""Stored job types and the ``max_running`` limits, in memory."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from jobyard.limits import Key, Limit
from jobyard.store.memory.tables import Part

_CONFIG, _API = "config", "api"


class MemoryJobTypes(Part):
    """:class:`~jobyard.store.protocol.JobTypeStore` in memory."""

    def put_job_type(self, name: str, definition: dict[str, Any], now: datetime) -> bool:
        with self._t.lock:
            created = name not in self._t.job_types
            self._t.job_types[name] = json.dumps(definition)
            return created

    def add_job_type(self, name: str, definition: dict[str, Any], now: datetime) -> bool:
        with self._t.lock:
            if name in self._t.job_types:
                return False
            self._t.job_types[name] = json.dumps(definition)
            return True

    def get_job_type(self, name: str) -> dict[str, Any] | None:
        with self._t.lock:
            definition = self._t.job_types.get(name)
        return None if definition is None else dict(json.loads(definition))

    def list_job_types(self) -> dict[str, dict[str, Any]]:
        with self._t.lock:
            return {name: json.loads(text) for name, text in sorted(self._t.job_types.items())}

    def delete_job_type(self, name: str) -> bool:
        with self._t.lock:
            return self._t.job_types.pop(name, None) is not None


class MemoryLimits(Part):
    """:class:`~jobyard.store.protocol.LimitStore` in memory."""

    def read(self) -> dict[Key, int]:
        with self._t.lock:
            return {key: n for key, (n, _) in self._t.limits.items()}

    def sync_limits(self, wanted: Sequence[Limit], owned: Collection[Key], now: datetime) -> bool:
        with self._t.lock:
            current = self._t.limits
            want = {limit.key: limit.max_running for limit in wanted}
            stale = [
                key
                for key, (_, source) in current.items()
                if key not in want and (key in owned or source == _CONFIG)
            ]
            changed = {
                key: (n, _CONFIG) for key, n in want.items() if current.get(key) != (n, _CONFIG)
            }
            for key in stale:
                del current[key]
            current.update(changed)
            return bool(stale or changed)

    def set_limit(self, key: Key, max_running: int | None, now: datetime) -> None:
        with self._t.lock:
            if max_running is None:
                self._t.limits.pop(key, None)
            else:
                self._t.limits[key] = (max_running, _API)
