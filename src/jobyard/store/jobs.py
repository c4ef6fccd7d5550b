"""Jobs, their events and their logs: submission, compare-and-set updates, reading."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Update,
    bindparam,
    case,
    delete,
    func,
    insert,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from jobyard import faults
from jobyard.events.records import JobEvent, LogWritten, Record
from jobyard.models import SORTABLE, Ended, EventKind, Job, JobEnd, JobQuery, JobUpdate, NewJob
from jobyard.states import LIVE, JobState
from jobyard.store import guard, submission, totals
from jobyard.store.access import audit_row
from jobyard.store.listing import job_after, job_filters, job_order
from jobyard.store.part import RETRIES, Part
from jobyard.store.protocol import AuditOf, lapsed, noted
from jobyard.store.rows import (
    by_id,
    event_from_row,
    event_row,
    fetch_jobs,
    is_awaited,
    job_columns,
    job_from_row,
    log_from_row,
    possible_id,
    update_by_id,
    whole_event_row,
)
from jobyard.store.tables import audit_log, job_dependencies, job_events, job_samples, jobs


class SqlJobs(Part):
    """:class:`~jobyard.store.protocol.JobStore` on SQL."""

    def add_jobs(
        self, new: Sequence[NewJob], now: datetime, *, audit: AuditOf | None = None
    ) -> list[tuple[Job, bool]]:
        """Insert a batch in one transaction; ``(job, created)`` per entry, in order.

        An entry whose ``idempotency_key`` is already taken (by a stored job or an
        earlier entry of the batch) inserts nothing and yields that job with False.
        Each created job gets a :class:`~jobyard.events.records.JobCreated` event;
        the entries ``audit`` makes go into the audit log in the same transaction.
        """
        for attempt in range(RETRIES):
            try:
                with self._write() as conn:
                    added = submission.insert_jobs(conn, new, now)
                    entries = audit(added) if audit else ()
                    if entries:
                        conn.execute(insert(audit_log), [audit_row(e) for e in entries])
                    return added
            except IntegrityError:
                # A concurrent batch took one of our keys: the next attempt finds its job.
                if attempt == RETRIES - 1 or not any(job.idempotency_key for job in new):
                    raise
        raise AssertionError("unreachable")

    def get_job(self, job_id: int) -> Job | None:
        """The job with this id, or None."""
        if not possible_id(job_id):
            return None
        with self._peek() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return job_from_row(row) if row else None

    def jobs_by_id(self, job_ids: Collection[int]) -> list[Job]:
        """The jobs with these ids, in that order (missing ones left out)."""
        with self._read() as conn:
            return fetch_jobs(conn, job_ids)

    def job_states(self, job_ids: Collection[int], *, settled: bool = False) -> dict[int, JobState]:
        """The state of each of these jobs that exists. ``settled``: as no end under way
        leaves them. A worker stores the end of a running (or paused) job and reads what
        waits for it in one transaction that holds the job's row: on a server database
        those rows are read again under a shared lock (in id order), which waits for
        it. Other ends commit before they settle; SQLite's one writer is seen whole."""
        if not job_ids:
            return {}
        with self._read() as conn:
            found = _states_of(conn, select(jobs.c.id, jobs.c.state), job_ids)
        if not settled or self._dialect == "sqlite":
            return found
        held = [job_id for job_id, state in found.items() if state in LIVE]
        if not held:
            return found
        locked = select(jobs.c.id, jobs.c.state).order_by(jobs.c.id).with_for_update(read=True)
        with self._write() as conn:
            now = _states_of(conn, locked, held)
        # as the end left them: one gone meanwhile was removed
        return {job_id: state for job_id, state in found.items() if job_id not in held} | now

    def list_jobs(self, query: JobQuery) -> tuple[list[Job], int]:
        """One page of jobs matching the filters, and how many match in all.

        With ``query.after``, the page starts after that place (the count is of them all).
        Raises ``ValueError`` for a sort key outside :data:`SORTABLE` or a page < 1.
        """
        bad = [key for key in query.sort if key.removeprefix("-") not in SORTABLE]
        if bad or query.page < 1 or query.per_page < 1:
            raise ValueError(f"bad listing: sort {bad}, page {query.page}/{query.per_page}")
        where = job_filters(query, self._engine.dialect)
        after = [] if query.after is None else [job_after(query.sort, query.after)]
        page = (
            select(jobs)
            .where(*where, *after)
            .order_by(*job_order(query.sort))
            .limit(query.per_page)
            .offset((query.page - 1) * query.per_page)
        )
        with self._read() as conn:
            total = conn.execute(select(func.count()).select_from(jobs).where(*where)).scalar()
            items = [job_from_row(row) for row in conn.execute(page).mappings()]
        return items, int(total or 0)

    def update_job(self, update: JobUpdate, now: datetime) -> Job | None:
        """Apply ``update`` if the job's state is still in ``update.expect``.

        Sets ``updated_at`` to ``now`` and appends ``update.event`` when applied;
        returns the updated job, or None when the job is gone or in another state.
        """
        values: dict[str, Any] = job_columns(update.values) | {"updated_at": now}
        expect = [JobState(state).value for state in update.expect]
        where = [jobs.c.id == update.job_id, jobs.c.state.in_(expect)]
        if update.unless_control is not None:
            pending = jobs.c.control
            where.append(or_(pending.is_(None), pending != update.unless_control.value))
        if update.clears is not None:
            done = jobs.c.control == update.clears.value
            values["control"] = case((done, null()), else_=jobs.c.control)
        with self._write() as conn:
            changed = conn.execute(update_jobs(values, *where)).rowcount
            if changed != 1:
                return None
            if update.event is not None:
                conn.execute(insert(job_events).values(event_row(update.job_id, update.event)))
            return fetch_jobs(conn, [update.job_id])[0]

    def delete_job(self, job_id: int, expect: frozenset[JobState]) -> bool:
        """Delete the job if its state is in ``expect``; True when deleted.

        Its events, log lines, resource samples and own dependencies go with it
        (the edges of jobs that wait for it stay: they tell those it was removed); what it
        counted in the ``/metrics`` histograms stays counted. A live job's worker, on
        PostgreSQL, is woken to look at its jobs: it finds this one gone and kills its
        processes now, not at its next poll.
        """
        states = [JobState(state).value for state in expect]
        query = delete(jobs).where(jobs.c.id == job_id, jobs.c.state.in_(states))
        with self._write() as conn:
            deleted = conn.execute(query.returning(jobs.c.worker, *totals.COUNTED)).all()
            if deleted:
                for table in (job_events, job_samples, job_dependencies):
                    conn.execute(delete(table).where(table.c.job_id == job_id))
                # what it counted in /metrics stays
                totals.add_removed_jobs(conn, [row[1:] for row in deleted])
                worker, state = deleted[0].worker, JobState(deleted[0].state)
                if worker is not None and state in LIVE and self._dialect == "postgresql":
                    # ``c:<worker>`` as a recorded control sends it (jobyard.events.wakeups)
                    notify = text("SELECT pg_notify('jobyard_jobs', :payload)")
                    conn.execute(notify, {"payload": f"c:{worker[:1000]}"})
        return bool(deleted)

    def restart_job(
        self, old_id: int, new: NewJob, now: datetime, records: Sequence[Record] = ()
    ) -> tuple[Job, bool] | None:
        """Store ``new`` as the restart of the terminal job ``old_id``, once.

        Returns ``(new job, True)``; or ``(old job, False)`` when the old job is not
        terminal or was already restarted (its ``restarted_as`` names the restart),
        and then nothing is stored; None when there is no such job. Concurrent
        restarts of one job wait for each other on its row: exactly one stores a job.
        ``records`` are stored with the new job, after its ``job_created``.
        """
        with self._write() as conn:
            stored = submission.insert_restart(conn, old_id, new, now)
            if stored is not None and stored[1] and records:
                rows = [event_row(stored[0].id, record) for record in records]
                conn.execute(insert(job_events), rows)
            return stored

    # -- events and logs ---------------------------------------------------
    def append_output(
        self,
        job_id: int,
        logs: Sequence[LogWritten],
        events: Sequence[Record],
        values: dict[str, Any],
        *,
        worker: str | None = None,
        attempt: int | None = None,
    ) -> bool:
        """Append log lines, then events, and set ``values`` on the job, atomically.

        ``updated_at`` changes only if ``values`` holds it. Nothing is written, and
        False returned, when the job is gone or (if given) no longer run by
        ``worker`` at ``attempt``: a run never writes for a job it lost.
        """
        if not (logs or events or values):
            return True
        with self._write() as conn:
            if not guard.holds(conn, job_id, worker=worker, attempt=attempt):
                return False
            if logs:
                conn.execute(insert(job_events), [event_row(job_id, line) for line in logs])
            if events:
                conn.execute(insert(job_events), [event_row(job_id, event) for event in events])
            if values:
                conn.execute(update_jobs(job_columns(values), jobs.c.id == job_id))
            return True

    def end_jobs(self, ends: Sequence[JobEnd], now: datetime) -> list[Ended | None]:
        """Write the ends of several attempts in one transaction (see :class:`JobEnd`).

        Per end, in order: the ended job, or None when nothing was written (the job
        is gone, is not run by that worker at that attempt any more, or left the
        expected states — an end written before, by a try whose commit went
        unseen, is not written twice). Statements are shared by the batch: one
        locking read, one update per job, one insert of the output and the final
        events, one read of the results.
        """
        if not ends:
            return []
        with self._write() as conn:
            ended = write_ends(conn, ends, now)
        faults.reach("end.after_commit")
        return ended

    def trim_log(self, job_id: int, marker_seq: int, upto_seq: int, marker: str) -> int:
        """Drop the job's log lines with ``marker_seq`` < seq ≤ ``upto_seq``; reword the marker.

        The log cap keeps the oldest and the newest lines; the marker line
        (already stored at ``marker_seq``) says how much was dropped between them.
        Returns how many lines were deleted.
        """
        logs = job_events.c
        with self._write() as conn:
            deleted = conn.execute(
                delete(job_events).where(
                    logs.job_id == job_id,
                    logs.kind == EventKind.LOG.value,
                    logs.seq > marker_seq,
                    logs.seq <= upto_seq,
                )
            ).rowcount
            conn.execute(
                update(job_events)
                .where(
                    logs.job_id == job_id, logs.kind == EventKind.LOG.value, logs.seq == marker_seq
                )
                .values(line=marker)
            )
            return int(deleted)

    def job_events(self, job_id: int, after_id: int = 0, limit: int = 1000) -> list[JobEvent]:
        """The job's events of every kind with id > ``after_id``, oldest first."""
        query = (
            select(job_events)
            .where(job_events.c.job_id == job_id, job_events.c.id > after_id)
            .order_by(job_events.c.id)
            .limit(limit)
        )
        return self._select_events(query)

    def log_lines(self, job_id: int, after_seq: int = 0, limit: int = 1000) -> list[LogWritten]:
        """The job's log lines with seq > ``after_seq``, in seq order."""
        query = (
            select(job_events)
            .where(
                job_events.c.job_id == job_id,
                job_events.c.kind == EventKind.LOG.value,
                job_events.c.seq > after_seq,
            )
            .order_by(job_events.c.seq)
            .limit(limit)
        )
        with self._read() as conn:
            return [log_from_row(row) for row in conn.execute(query).mappings()]

    def _select_events(self, query: Select[Any]) -> list[JobEvent]:
        with self._read() as conn:
            return [event_from_row(row) for row in conn.execute(query).mappings()]


def write_ends(
    conn: Connection,
    ends: Sequence[JobEnd],
    now: datetime,
    events: list[dict[str, Any]] | None = None,
) -> list[Ended | None]:
    """:meth:`SqlJobs.end_jobs` within the caller's transaction (which commits it).

    Given ``events``, the event rows go there, for the caller to insert (with its own,
    in one statement), instead of being inserted here.
    """
    ids = [end.update.job_id for end in ends]
    ended: dict[int, Job] = {}
    held, waited = _lock_ends(conn, ids)
    mine = [end for end in ends if _holds(held.get(end.update.job_id), end)]
    shapes: dict[frozenset[str], list[dict[str, Any]]] = {}  # one executemany per shape
    notes: dict[int, LogWritten] = {}
    updates = {end.update.job_id: end.update_for(held[end.update.job_id]) for end in mine}
    for end in mine:
        job_id = end.update.job_id
        values = end.values | updates[job_id].values | {"updated_at": now}
        if end.note is not None:
            notes[job_id] = note = noted(held[job_id], end.note, now)
            values["log_lines"] = note.seq
        columns = job_columns(values)
        shapes.setdefault(frozenset(columns), []).append(by_id(job_id, columns))
        # The row is locked: it is now what we wrote, no need to read it back.
        if "state" in values:
            values["state"] = JobState(values["state"])
        ended[job_id] = held[job_id].evolve(**values)
    for shape, params in shapes.items():
        conn.execute(update_by_id(shape), params)
    # One insert for the whole batch: every output line and event, then the
    # final events (rows get ids in this order, so a job's end comes last).
    rows = [
        whole_event_row(end.update.job_id, record)
        for end in mine
        for record in (*end.logs, *end.events, *_noted(notes, end))
    ]
    rows += [
        whole_event_row(job_id, update.event)
        for job_id, update in updates.items()
        if update.event is not None
    ]
    if events is not None:
        events += rows
    elif rows:
        conn.execute(_INSERT_EVENT, rows)
    # Whether jobs wait for them, read in the same transaction: a job that no
    # one waits for needs no settling, and a dependent stored before this end
    # committed is seen here (one stored after it sees the end).
    if waited is None:
        waited = set(conn.scalars(_AWAITED, {"ids": list(ended)})) if ended else set()
    faults.reach("end.before_commit")
    return [Ended(job, job.id in waited) if (job := ended.get(job_id)) else None for job_id in ids]


def _lock_ends(conn: Connection, ids: Sequence[int]) -> tuple[dict[int, Job], set[int] | None]:
    """Lock the rows of the ending jobs; on SQLite, with those that jobs wait for.

    SQLite runs one writer at a time: no dependency can be stored between this read
    and the commit, so whether jobs wait for an ended job comes with its row, and
    the end needs no read after its update. Elsewhere a dependent stored while this
    read waited for a row lock would be missed by a subquery of it (its snapshot
    predates the wait): that is read after the update (None here).
    """
    if conn.dialect.name != "sqlite":
        return guard.lock_jobs(conn, ids), None
    held: dict[int, Job] = {}
    waited: set[int] = set()
    for row in conn.execute(_LOCK_ENDS_SQLITE, {"ids": list(ids)}).mappings():
        data = dict(row)
        if data.pop("awaited"):
            waited.add(data["id"])
        held[data["id"]] = job_from_row(data)
    return held, waited


def _holds(job: Job | None, end: JobEnd) -> bool:
    if job is None:
        return False
    mine = (job.worker, job.attempt) == (end.worker, end.attempt)
    return mine and job.state in end.update.expect and lapsed(job, end)


def _noted(notes: dict[int, LogWritten], end: JobEnd) -> tuple[LogWritten, ...]:
    note = notes.get(end.update.job_id)
    return () if note is None else (note,)


def _states_of(
    conn: Connection, query: Select[Any], job_ids: Collection[int]
) -> dict[int, JobState]:
    found = conn.execute(query.where(jobs.c.id.in_(list(job_ids))))
    return {job_id: JobState(state) for job_id, state in found}


_INSERT_EVENT = insert(job_events)
# The ids among ``ids`` that jobs wait for.
_AWAITED = select(jobs.c.id).where(jobs.c.id.in_(bindparam("ids", expanding=True)), is_awaited())


_LOCK_ENDS_SQLITE = guard.JOBS_BY_IDS.add_columns(is_awaited().label("awaited"))


def update_jobs(values: dict[str, Any], *where: ColumnElement[bool]) -> Update:
    return update(jobs).where(*where).values(values)
