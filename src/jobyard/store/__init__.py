"""Storage: the store contract, one SQLAlchemy Core store, and an in-memory one.

The contract is a set of protocols in domain verbs, one per concern
(:mod:`.protocol`), reached as parts of a store: ``store.jobs``, ``store.queue``,
``store.deps``, ``store.runs``, ``store.workers``, … The SQL store
(:class:`Store`, for SQLite, PostgreSQL and MariaDB/MySQL) owns the schema
(:mod:`.tables`, Alembic ``migrations/``), engines and dialect gaps
(:mod:`.engine`), and one part per concern: jobs and their events
(:mod:`.jobs`), claims and leases (:mod:`.queue`, :mod:`.slots`), dependencies,
workflow runs, schedules and fires, workers, job types, limits, and monitoring
(notifications, samples, stats). Rows become the frozen records of
:mod:`jobyard.models` and :mod:`jobyard.events.records` here. :mod:`.memory`
holds the same contract in plain dicts, for tests that must run in
milliseconds. It imports only the domain modules (``models``, ``states``,
``limits``, ``routing``, the event records) and SQLAlchemy: no API, CLI,
worker or service above it.
"""

from __future__ import annotations

from jobyard.store.store import Store, StoreError

__all__ = ["Store", "StoreError"]
