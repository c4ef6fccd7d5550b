"""The in-memory store: a second implementation of the store protocols, for fast tests.

Plain dicts and lists under one lock, with the SQL store's semantics, held to the
same contract suite (``tests/integration/test_store*.py`` run on both): state
compare-and-set, event ids increasing across jobs, claims by priority then id
within the ``max_running`` limits, leases, dependency edges counted once. It
implements the parts that the job manager, the dependency engine, workflow runs,
the catalogue and the worker use (:class:`~jobyard.store.protocol.Storage`);
schedules and fires, the event feed, notifications and metrics are SQL only.
Nothing is persisted, and it serves one process.
"""

from __future__ import annotations

from jobyard.store.memory.catalog import MemoryJobTypes, MemoryLimits
from jobyard.store.memory.dependencies import MemoryDependencies
from jobyard.store.memory.jobs import MemoryJobs
from jobyard.store.memory.queue import MemoryQueue
from jobyard.store.memory.retention import MemoryRetention
from jobyard.store.memory.runs import MemoryRuns
from jobyard.store.memory.samples import MemorySamples
from jobyard.store.memory.tables import Tables
from jobyard.store.memory.workers import MemoryWorkers

__all__ = ["MemoryStore"]


class MemoryStore:
    """A :class:`~jobyard.store.protocol.Storage` in this process's memory."""

    dialect = "memory"

    def __init__(self) -> None:
        tables = Tables()
        self.jobs = MemoryJobs(tables)
        self.queue = MemoryQueue(tables)
        self.deps = MemoryDependencies(tables)
        self.runs = MemoryRuns(tables)
        self.workers = MemoryWorkers(tables)
        self.job_types = MemoryJobTypes(tables)
        self.limits = MemoryLimits(tables)
        self.monitor = MemorySamples(tables)
        self.retention = MemoryRetention(tables)

    def migrate(self) -> None:
        """Nothing to do: the tables are there from the start."""

    def close(self) -> None:
        """Nothing to release."""
