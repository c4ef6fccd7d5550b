"""Job types created through the API, stored whole by name."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from jobyard.store.part import Part
from jobyard.store.rows import load_json
from jobyard.store.tables import job_types


class SqlJobTypes(Part):
    """:class:`~jobyard.store.protocol.JobTypeStore` on SQL."""

    def put_job_type(self, name: str, definition: dict[str, Any], now: datetime) -> bool:
        """Store the definition under ``name``; True when created, False when replaced."""
        return self._upsert(
            job_types,
            job_types.c.name == name,
            {"definition": definition, "updated_at": now},
            {"name": name, "created_at": now},
        )

    def add_job_type(self, name: str, definition: dict[str, Any], now: datetime) -> bool:
        """Store the definition under a new ``name``; False when the name is taken (by a
        writer that came first: the unique key decides, not an earlier read)."""
        row = {"name": name, "definition": definition, "created_at": now, "updated_at": now}
        try:
            with self._write() as conn:
                conn.execute(insert(job_types).values(row))
        except IntegrityError:
            return False
        return True

    def get_job_type(self, name: str) -> dict[str, Any] | None:
        """The stored definition, or None."""
        query = select(job_types.c.definition).where(job_types.c.name == name)
        with self._read() as conn:
            definition = conn.execute(query).scalar()
        return dict(load_json(definition)) if definition is not None else None

    def list_job_types(self) -> dict[str, dict[str, Any]]:
        """Every stored definition by name, sorted by name."""
        query = select(job_types.c.name, job_types.c.definition).order_by(job_types.c.name)
        with self._read() as conn:
            return {name: dict(load_json(definition)) for name, definition in conn.execute(query)}

    def delete_job_type(self, name: str) -> bool:
        """Delete the stored definition; True when there was one."""
        with self._write() as conn:
            return bool(conn.execute(delete(job_types).where(job_types.c.name == name)).rowcount)
