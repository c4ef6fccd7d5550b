"""The job type catalogue: types from ``jobyard.yaml`` and types stored through the API.

Types from the configuration file are read-only at run time (change the file);
types created through the API live in the database, so every API node and
worker sees the same ones — and so does their ``max_running``, kept with the
other limits for the claim to enforce.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from jobyard.clock import utcnow
from jobyard.errors import Conflict, Forbidden, Invalid, NotFound
from jobyard.jobtypes.params import FieldError
from jobyard.jobtypes.spec import (
    JobType,
    JobTypeInvalid,
    parse_job_type,
    queue_problems,
    user_problems,
)
from jobyard.limits import Scope
from jobyard.store.protocol import Storage


class Catalog:
    """The types of ``configured`` (the file's) and the stored ones.

    With ``writable`` false (``api_job_types: false`` in the file) stored types
    can still be used, and no longer be created, changed or deleted.
    """

    def __init__(
        self,
        store: Storage,
        configured: Mapping[str, JobType],
        *,
        writable: bool = True,
        queues: Collection[str] | None = None,
    ) -> None:
        self._store = store
        self._configured = dict(configured)
        self.writable = writable
        self._queues = queues  # the queues a new type or a job may name (None: any)
        # Stored types as last parsed, with their definitions: parsing one (its
        # params' schema checked against the meta-schema, a validator built) costs
        # milliseconds, and a submission must not pay that each time.
        self._parsed: dict[str, tuple[Mapping[str, Any], JobType]] = {}

    def get(self, name: str) -> JobType | None:
        if name in self._configured:
            return self._configured[name]
        definition = self._store.job_types.get_job_type(name)
        return None if definition is None else self._stored(name, definition)

    def require(self, name: str) -> JobType:
        job_type = self.get(name)
        if job_type is None:
            raise NotFound(f"no job type named {name!r}")
        return job_type

    def all(self) -> list[JobType]:
        stored = {
            name: self._stored(name, definition)
            for name, definition in self._store.job_types.list_job_types().items()
            if name not in self._configured
        }
        merged = {**stored, **self._configured}
        return [merged[name] for name in sorted(merged)]

    def put(
        self, name: str, definition: Mapping[str, Any], now: datetime, *, replace: bool = True
    ) -> tuple[JobType, bool]:
        """Create or replace an API-defined type; returns it and whether it is new. Without
        ``replace``, a type of that name stored already, even a moment ago by another
        request, is a :class:`Conflict`."""
        self.refuse_writes()
        self.refuse_configured(name)
        if not replace and self._store.job_types.get_job_type(name) is not None:
            raise self._exists(name)  # before the definition's own problems, as ever
        if "name" in definition and definition["name"] != name:
            said = f"{definition['name']!r} is not the name the path gives ({name!r})"
            raise Invalid(f"job type {name!r} is invalid", [{"field": "name", "message": said}])
        data = {k: v for k, v in definition.items() if k not in ("name", "source")}
        try:
            job_type = parse_job_type(name, {**data, "source": "api"})
        except JobTypeInvalid as exc:
            raise Invalid(f"job type {name!r} is invalid", exc.errors) from exc
        if problems := self.problems(job_type):
            raise Invalid(f"job type {name!r} is invalid", problems)
        if replace:
            created = self._store.job_types.put_job_type(name, data, now)
        elif not (created := self._store.job_types.add_job_type(name, data, now)):
            raise self._exists(name)  # added a moment ago by another request
        self._store.limits.set_limit((Scope.TYPE, name), job_type.max_running, now)
        return job_type, created

    @staticmethod
    def _exists(name: str) -> Conflict:
        return Conflict(
            f"job type {name!r} exists; PUT /api/v1/job-types/{name} (jobyard types edit) "
            "replaces it"
        )

    def problems(self, job_type: JobType) -> list[FieldError]:
        """What a valid definition cannot have here: a queue the file does not declare,
        a user this host does not know."""
        return self.queue_problems(job_type.queue) + user_problems(job_type)

    def queue_problems(self, queue: str) -> list[FieldError]:
        """A ``queue`` problem when the file declares queues and not this one."""
        return queue_problems(queue, self._queues)

    def delete(self, name: str) -> None:
        self.refuse_writes()
        self.refuse_configured(name)
        self._parsed.pop(name, None)
        if not self._store.job_types.delete_job_type(name):
            raise NotFound(f"no job type named {name!r}")
        self._store.limits.set_limit((Scope.TYPE, name), None, utcnow())

    def _stored(self, name: str, definition: Mapping[str, Any]) -> JobType:
        """The stored type ``name``, parsed again only when its definition changed."""
        cached = self._parsed.get(name)
        if cached is not None and cached[0] == definition:
            return cached[1]
        job_type = parse_job_type(name, {**definition, "source": "api"}, stored=True)
        self._parsed[name] = (copy.deepcopy(dict(definition)), job_type)
        return job_type

    def refuse_writes(self) -> None:
        """Raise :class:`Forbidden` if stored types may not be changed."""
        if not self.writable:
            raise Forbidden(
                "job types cannot be created, changed or deleted through the API: "
                "the server is configured with api_job_types: false"
            )

    def refuse_configured(self, name: str) -> None:
        """Raise :class:`Conflict` if ``name`` is a type of the configuration file."""
        if name in self._configured:
            raise Conflict(
                f"job type {name!r} is defined in the configuration file; change it there",
                source="config",
            )
