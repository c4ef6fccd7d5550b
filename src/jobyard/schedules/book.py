"""The schedules in force: those of ``jobyard.yaml`` and those created through the API.

Schedules of the file are changed in the file; through the API they can only be
paused and resumed (the paused state is stored). Schedules created through the
API are stored whole and can be deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobyard.errors import Conflict, Invalid, NotFound
from jobyard.jobtypes.catalog import Catalog
from jobyard.jobtypes.spec import ArgsInvalid
from jobyard.schedules.due import (
    PausedBy,
    ScheduleInvalid,
    ScheduleSpec,
    file_paused_state,
    parse_schedule,
)
from jobyard.store import Store
from jobyard.workflows.dag import run_args_problems
from jobyard.workflows.spec import WorkflowSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    spec: ScheduleSpec
    source: str  # config | api
    counts_from: datetime | None  # fire times before this were not missed (created, resumed)
    paused_by: PausedBy = "api"  # whose ``spec.paused`` it is: the file's, or the API's


class ScheduleBook:
    def __init__(
        self,
        store: Store,
        configured: Mapping[str, ScheduleSpec],
        catalog: Catalog,
        workflows: Mapping[str, WorkflowSpec],
    ) -> None:
        self.store = store
        self.configured = dict(configured)
        self.catalog = catalog
        self.workflows = workflows

    def all(self) -> dict[str, Entry]:
        rows = self.store.schedules.schedule_rows()
        entries = {}
        for name, spec in self.configured.items():
            row = rows.get(name)
            stored, seen = (row.paused, row.file_paused) if row else (None, None)
            paused, by = file_paused_state(spec.paused, stored, seen)
            since = row.updated_at if row and not paused else None
            spec = spec.model_copy(update={"paused": paused})
            entries[name] = Entry(spec, "config", since, by)
        for name, row in rows.items():
            if row.definition is None or name in self.configured:
                continue
            try:
                spec = parse_schedule(name, {**row.definition, "paused": row.paused})
            except ScheduleInvalid as exc:  # stored by an older version, say: skip, loudly
                log.error("stored schedule is invalid", extra={"schedule": name, "error": exc})
                continue
            entries[name] = Entry(spec, "api", None if row.paused else row.updated_at)
        return dict(sorted(entries.items()))

    def get(self, name: str) -> Entry:
        entry = self.all().get(name)
        if entry is None:
            raise NotFound(f"no schedule named {name!r}")
        return entry

    def create(self, definition: Mapping[str, Any], now: datetime) -> Entry:
        name = definition.get("name")
        if not isinstance(name, str) or not name:
            raise Invalid("a schedule needs a name", [{"field": "name", "message": "required"}])
        data = {k: v for k, v in definition.items() if k != "name"}
        spec = parse_schedule(name, data)
        self.check_target(spec)
        if name in self.configured or not self.store.schedules.create_schedule(name, data, now):
            raise Conflict(f"schedule {name!r} exists")
        return self.get(name)

    def set_paused(self, name: str, paused: bool, now: datetime) -> Entry:
        """Pause or resume; for a schedule of the file, until the file's ``paused`` changes.

        A resume of a schedule that cannot fire (its job type or workflow is gone, its
        arguments no longer fit) is a 409 that says why, and changes nothing.
        """
        entry = self.get(name)
        if not paused:
            try:
                self.check_target(entry.spec)
            except Invalid as exc:
                raise Conflict(f"schedule {name!r} cannot fire: {exc}") from exc
        in_file = self.configured[name].paused if name in self.configured else None
        self.store.schedules.set_schedule_paused(name, paused, now, file_paused=in_file)
        return self.get(name)

    def read_file(self, now: datetime) -> None:
        """Give the file's schedules their names, and apply the file's ``paused`` of each
        schedule whose value there changed since it was last seen (over a pause or resume
        through the API), and note it where unseen.

        Called as the server starts, so that a value changed once applies once: a
        later pause or resume through the API lasts until the file changes again. A
        schedule created through the API under a name the file now uses is deleted, with
        its fires, and logged: else it would hide behind the file's (its name refused
        by the API) and fire again once the file dropped that name.
        """
        for name, definition in self.store.schedules.yield_to_file(self.configured).items():
            log.warning(
                "schedule created through the API replaced by the file's of its name",
                extra={"schedule": name, "definition": definition},
            )
        rows = self.store.schedules.schedule_rows()
        for name, spec in self.configured.items():
            row = rows.get(name)
            if row is None or row.file_paused == spec.paused:
                continue
            paused, by = file_paused_state(spec.paused, row.paused, row.file_paused)
            if by == "file":
                log.info(
                    "schedule paused state taken from the file",
                    extra={"schedule": name, "paused": paused},
                )
            self.store.schedules.set_schedule_paused(name, paused, now, file_paused=spec.paused)

    def delete(self, name: str) -> None:
        if name in self.configured:
            raise Conflict(
                f"schedule {name!r} is defined in the configuration file; change it there"
            )
        if not self.store.schedules.delete_schedule(name):
            raise NotFound(f"no schedule named {name!r}")

    def check_target(self, spec: ScheduleSpec) -> None:
        """422 unless ``spec``'s job type or workflow is known and takes its arguments."""
        kind, target = spec.target
        if kind == "workflow":
            if target not in self.workflows:
                message = f"unknown workflow {target!r}"
                raise Invalid(message, [{"field": "workflow", "message": message}])
            workflow = self.workflows[target]
            if problems := run_args_problems(workflow, self.catalog.require, spec.args):
                raise ArgsInvalid(problems).under_args("the schedule's arguments are invalid")
            return
        job_type = self.catalog.get(target)
        if job_type is None:
            message = f"unknown job type {target!r}"
            raise Invalid(message, [{"field": "job_type", "message": message}])
        try:
            job_type.validate_args(spec.args)
        except ArgsInvalid as exc:
            raise exc.under_args("the schedule's arguments are invalid") from exc
