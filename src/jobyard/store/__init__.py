"""Storage: one SQLAlchemy Core store for SQLite, PostgreSQL and MariaDB/MySQL.

Owns the schema (:mod:`.tables`, Alembic ``migrations/``), engines and dialect
gaps (:mod:`.engine`), and the domain verbs over them: jobs and their events,
claims and leases (:mod:`.queue`, :mod:`.slots`), dependencies, workflow runs,
schedules and fires, workers, limits, notifications and samples. Rows become
the frozen records of :mod:`jobyard.models` and :mod:`jobyard.events.records`
here. It imports only the domain modules (``models``, ``states``, ``limits``,
``routing``, the event records) and SQLAlchemy: no API, CLI, worker or service
above it.
"""

from __future__ import annotations

from jobyard.store.store import Store, StoreError

__all__ = ["Store", "StoreError"]
