"""Storage: one SQLAlchemy Core store for SQLite, PostgreSQL and MariaDB/MySQL."""

from __future__ import annotations

from jobyard.store.store import (
    SORTABLE,
    JobQuery,
    JobUpdate,
    NewJob,
    Store,
    StoreError,
)

__all__ = ["SORTABLE", "JobQuery", "JobUpdate", "NewJob", "Store", "StoreError"]
