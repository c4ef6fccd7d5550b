"""Stored schedules (paused flags, API-defined schedules) and their fires."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, delete, insert, not_, select, update
from sqlalchemy.exc import IntegrityError

from jobyard.models import Job, NewJob, WorkflowRun
from jobyard.store import fires
from jobyard.store.fires import Fire
from jobyard.store.part import Part
from jobyard.store.rows import load_json
from jobyard.store.runs import insert_run
from jobyard.store.tables import schedules


@dataclass(frozen=True)
class ScheduleRow:
    name: str
    definition: dict[str, Any] | None  # None: a schedule of the configuration file
    paused: bool
    created_at: datetime
    updated_at: datetime
    file_paused: bool | None = None  # a schedule of the file: its ``paused`` there last seen


class SqlSchedules(Part):
    """Schedules and their fires on SQL (the memory store has none)."""

    def schedule_rows(self) -> dict[str, ScheduleRow]:
        with self._read() as conn:
            return all_rows(conn)

    def create_schedule(self, name: str, definition: dict[str, Any], now: datetime) -> bool:
        with self._write() as conn:
            return create(conn, name, definition, now)

    def set_schedule_paused(
        self, name: str, paused: bool, now: datetime, *, file_paused: bool | None = None
    ) -> None:
        """Store ``paused``; for a schedule of the file, with its ``paused`` there now."""
        with self._write() as conn:
            set_paused(conn, name, paused, now, file_paused)

    def delete_schedule(self, name: str) -> bool:
        with self._write() as conn:
            return remove(conn, name)

    def yield_to_file(self, names: Collection[str]) -> dict[str, dict[str, Any]]:
        """Delete the schedules created through the API under ``names`` (the file's now):
        the definitions of those deleted, by name (the fires of the names stay)."""
        with self._write() as conn:
            return yield_to_file(conn, names)

    def claim_fire(
        self, schedule: str, fire_time: datetime, now: datetime, job_id: int | None = None
    ) -> bool:
        """Record that ``schedule`` fires at ``fire_time`` (making the job ``job_id``, or
        nothing); False if it already did."""
        with self._write() as conn:
            return fires.claim(conn, schedule, fire_time, now, job_id)

    def add_fired_run(
        self,
        fire: tuple[str, datetime],
        workflow: str,
        args: dict[str, Any],
        nodes: Sequence[NewJob],
        edges: Sequence[tuple[int, int]],
        now: datetime,
    ) -> tuple[WorkflowRun, list[Job]] | None:
        """A schedule's fire (its name and time) claimed, with the run it starts, in one
        transaction (as :meth:`~jobyard.store.runs.SqlRuns.add_workflow_run` stores a
        run): None, and no run, when the time was fired already."""
        schedule, fire_time = fire
        with self._write() as conn:
            if not fires.claim(conn, schedule, fire_time, now):
                return None
            run, jobs = insert_run(conn, workflow, args, f"schedule:{schedule}", nodes, edges, now)
            fires.set_target(conn, schedule, fire_time, None, run.id)
            return run, jobs

    def last_fire(self, schedule: str) -> Fire | None:
        with self._read() as conn:
            return fires.last(conn, schedule)

    def last_started_fire(self, schedule: str) -> Fire | None:
        """The newest fire that created a job or a run (skipped fires create none)."""
        with self._read() as conn:
            return fires.last(conn, schedule, started=True)


#: A row that holds only the paused state of a schedule of the configuration file.
_of_the_file = schedules.c.definition.is_(None)


def all_rows(conn: Connection) -> dict[str, ScheduleRow]:
    rows = conn.execute(select(schedules).order_by(schedules.c.name)).mappings()
    return {
        row["name"]: ScheduleRow(
            row["name"],
            load_json(row["definition"]),
            bool(row["paused"]),
            row["created_at"],
            row["updated_at"],
            None if row["file_paused"] is None else bool(row["file_paused"]),
        )
        for row in rows
    }


def create(conn: Connection, name: str, definition: dict[str, Any], now: datetime) -> bool:
    """Insert a stored schedule (paused if its definition says so); False when the name is taken.

    The name is free where only the paused state of a schedule since removed from the
    file holds it (the caller knows the file's names). The new schedule starts without
    history: fires stored under its name (a leader's claim made as an earlier schedule
    of the name was deleted, or the removed file schedule's) are deleted with it.
    """
    row = {"name": name, "definition": definition, "paused": definition.get("paused") is True}
    try:
        with conn.begin_nested():
            conn.execute(delete(schedules).where(schedules.c.name == name, _of_the_file))
            conn.execute(insert(schedules), [row | {"created_at": now, "updated_at": now}])
    except IntegrityError:
        return False
    fires.forget(conn, name)
    return True


def set_paused(
    conn: Connection, name: str, paused: bool, now: datetime, file_paused: bool | None
) -> None:
    # updated_at is when the state last changed: fire times count from a resume. It is
    # set first: MySQL and MariaDB assign left to right, so a CASE after ``paused`` would
    # read the new value (PostgreSQL and SQLite read the old row either way).
    since = case((schedules.c.paused == paused, schedules.c.updated_at), else_=now)
    values = {"paused": paused, "file_paused": file_paused}
    ordered = [(schedules.c.updated_at, since), *((schedules.c[k], v) for k, v in values.items())]
    changed = conn.execute(
        update(schedules).where(schedules.c.name == name).ordered_values(*ordered)
    ).rowcount
    if not changed:  # a schedule of the file, paused for the first time
        row = {"name": name, "definition": None, "created_at": now, "updated_at": now}
        conn.execute(insert(schedules), [row | values])


def remove(conn: Connection, name: str) -> bool:
    """Delete a schedule created through the API, and its fires (a schedule made later
    under its name owes nothing to them); False when there is none. A schedule of the
    file has only its paused state here, which is no schedule to delete."""
    query = delete(schedules).where(schedules.c.name == name, not_(_of_the_file))
    if not conn.execute(query).rowcount:
        return False
    fires.forget(conn, name)
    return True


def yield_to_file(conn: Connection, names: Collection[str]) -> dict[str, dict[str, Any]]:
    """Delete the schedules created through the API whose names the file now gives its
    own: their definitions, by name. A row of the file's paused state stays, and so do
    the fires of the name: the file's schedule fired under it while both were stored
    (and must see a run of its own still going)."""
    if not names:
        return {}
    ours = schedules.c.name.in_(sorted(names)), not_(_of_the_file)
    found = conn.execute(select(schedules.c.name, schedules.c.definition).where(*ours))
    taken = {name: load_json(definition) for name, definition in found}
    if taken:
        conn.execute(delete(schedules).where(*ours))
    return taken
