"""Retention on SQL: remove old rows of finished work, one small transaction per call.

Every verb removes at most ``limit`` rows of its table in one short transaction
and says whether another call may find more, so a caller can pause between
batches and never holds a lock for long. Jobs are locked with ``SKIP LOCKED``
(a job a worker or the API is writing is left for the next pass); only
terminal jobs qualify. Events that a durable reader has not read yet (a
``cursors`` position, e.g. the notifier's) are never removed, and the newest
event id removed is kept as the cursor :data:`PRUNED_CURSOR`, so a stream
resuming from before it can be told to reload. A workflow run goes once it has
ended and none of its jobs is left; a schedule's newest fire always stays (the
scheduler counts the next fire times from it).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    delete,
    func,
    not_,
    or_,
    select,
    update,
)

from jobyard.models import EventKind
from jobyard.states import TERMINAL
from jobyard.store import fires, notes, totals
from jobyard.store.part import Part
from jobyard.store.protocol import Pruned
from jobyard.store.rows import is_awaited
from jobyard.store.tables import (
    audit_log,
    cursors,
    job_dependencies,
    job_events,
    job_samples,
    jobs,
    notifications,
    schedule_fires,
    workflow_runs,
)

PRUNED_CURSOR = "retention.events"  # the newest event id that retention removed
_DONE = ("sent", "failed", "recorded")  # notifications nobody will send any more
_TERMINAL = sorted(state.value for state in TERMINAL)
_LOG = EventKind.LOG.value


class SqlRetention(Part):
    """:class:`~jobyard.store.protocol.RetentionStore` on SQL."""

    def prune_jobs(self, before: datetime, limit: int, now: datetime) -> Pruned:
        """Remove terminal jobs finished before ``before`` with everything they own.

        A batch first removes up to ``limit`` events of the chosen jobs; once they
        have none left, the jobs go with their samples and own edges. Jobs that
        others still wait for, or nodes of a running workflow run, are kept.
        """
        with self._write() as conn:
            ids = _locked_ids(conn, _finished(before, _removable()), limit)
            if not ids:
                return Pruned()
            events = _drop_events(conn, ids, (), limit, now)
            if events:
                return Pruned(0, events, True)
            kept = _with_events(conn, ids, ())  # only events a reader still needs
            gone = [job_id for job_id in ids if job_id not in kept]
            owned = 0
            if gone:
                for table in (job_samples, job_dependencies):
                    owned += conn.execute(delete(table).where(table.c.job_id.in_(gone))).rowcount
                removed = delete(jobs).where(jobs.c.id.in_(gone)).returning(*totals.COUNTED)
                totals.add_removed_jobs(conn, conn.execute(removed))
            return Pruned(len(gone), owned, bool(gone))

    def prune_logs(self, before: datetime, limit: int, now: datetime) -> Pruned:
        """Remove up to ``limit`` log lines of jobs finished before ``before``;
        a job left with none gets ``logs_pruned_at``."""
        return self._prune_of_jobs(jobs.c.logs_pruned_at, (_LOG,), before, limit, now)

    def prune_events(self, before: datetime, limit: int, now: datetime) -> Pruned:
        """Remove up to ``limit`` events other than log lines of jobs finished before
        ``before``; a job left with none gets ``events_pruned_at``."""
        kinds = tuple(kind.value for kind in EventKind if kind is not EventKind.LOG)
        return self._prune_of_jobs(jobs.c.events_pruned_at, kinds, before, limit, now)

    def prune_samples(self, before: datetime, limit: int, now: datetime) -> Pruned:
        """Remove up to ``limit`` resource samples of jobs finished before ``before``."""
        query = select(job_samples.c.id).join(jobs, jobs.c.id == job_samples.c.job_id)
        query = query.where(*_old(before))
        return self._drop_rows(job_samples, query, limit)

    def prune_notifications(self, before: datetime, limit: int, now: datetime) -> Pruned:
        """Remove up to ``limit`` sent, failed or recorded notifications made before
        ``before``; what they counted in ``/metrics`` stays counted."""
        c = notifications.c
        query = select(c.id).where(c.status.in_(_DONE), c.created_at < before).limit(limit)
        with self._write() as conn:
            ids = list(conn.scalars(query))
            gone = notes.removed(conn, ids)
        return Pruned(gone, 0, len(ids) == limit)

    def prune_audit(self, before: datetime, limit: int, now: datetime) -> Pruned:
        """Remove up to ``limit`` audit log entries older than ``before``."""
        query = select(audit_log.c.id).where(audit_log.c.at < before)
        return self._drop_rows(audit_log, query, limit)

    def prune_runs(self, before: datetime, limit: int, now: datetime) -> Pruned:
        """Remove up to ``limit`` workflow runs that ended before ``before`` and have no
        job left (their node jobs went by the ``jobs`` age, or never existed)."""
        with self._write() as conn:
            ids = _locked_ids(conn, _old_runs(before), limit)
            if not ids:
                return Pruned()
            # The condition again: a run that changed meanwhile stays.
            where = (workflow_runs.c.id.in_(ids), *_ended(before))
            gone = conn.execute(delete(workflow_runs).where(*where)).rowcount
        return Pruned(gone, 0, len(ids) == limit)

    def prune_fires(self, before: datetime, limit: int, now: datetime) -> Pruned:
        """Remove up to ``limit`` schedule fires made before ``before``, each schedule's
        newest apart: it is where the scheduler's next pass starts counting."""
        c = schedule_fires.c
        with self._write() as conn:
            found = conn.execute(
                select(c.schedule, c.fire_time).where(*_old_fires(before)).limit(limit)
            ).all()
            by_schedule: dict[str, list[datetime]] = {}
            for schedule, fire_time in found:
                by_schedule.setdefault(schedule, []).append(fire_time)
            for schedule, times in by_schedule.items():
                where = (c.schedule == schedule, c.fire_time.in_(times))
                conn.execute(delete(schedule_fires).where(*where))
        return Pruned(len(found), 0, len(found) == limit)

    def prunable(self, kind: str, before: datetime) -> int:
        """How many rows the verb of ``kind`` would remove now (each kind counted alone)."""
        with self._read() as conn:
            return int(conn.execute(_count(kind, before, _readable(conn))).scalar_one())

    def pruned_through(self) -> int:
        """The newest event id retention removed (0: none)."""
        with self._read() as conn:
            return notes.cursor(conn, PRUNED_CURSOR) or 0

    def _prune_of_jobs(
        self,
        mark: Any,
        kinds: Sequence[str],
        before: datetime,
        limit: int,
        now: datetime,
    ) -> Pruned:
        with self._write() as conn:
            ids = _locked_ids(conn, _finished(before, mark.is_(None)), limit)
            if not ids:
                return Pruned()
            removed = _drop_events(conn, ids, kinds, limit, now)
            left = _with_events(conn, ids, kinds)
            done = [job_id for job_id in ids if job_id not in left]
            if done:
                conn.execute(update(jobs).where(jobs.c.id.in_(done)).values({mark.key: now}))
            return Pruned(removed, len(done), bool(removed or done))

    def _drop_rows(self, table: Any, ids: Select[Any], limit: int) -> Pruned:
        with self._write() as conn:
            found = list(conn.scalars(ids.limit(limit)))
            if found:
                conn.execute(delete(table).where(table.c.id.in_(found)))
        return Pruned(len(found), 0, len(found) == limit)


def _old(before: datetime) -> list[ColumnElement[bool]]:
    return [jobs.c.state.in_(_TERMINAL), jobs.c.finished_at < before]


def _removable() -> ColumnElement[bool]:
    """Nobody waits for the job and its workflow run (if any) has ended."""
    running = select(workflow_runs.c.id).where(workflow_runs.c.state == "running")
    return ~is_awaited() & or_(jobs.c.workflow_run.is_(None), jobs.c.workflow_run.not_in(running))


def _finished(before: datetime, *more: ColumnElement[bool]) -> Select[Any]:
    return select(jobs.c.id).where(*_old(before), *more)


def _locked_ids(conn: Connection, query: Select[Any], limit: int) -> list[int]:
    # SKIP LOCKED: a row someone is writing right now waits for the next pass.
    return list(conn.scalars(query.limit(limit).with_for_update(skip_locked=True)))


def _ended(before: datetime) -> list[ColumnElement[bool]]:
    """A workflow run that ended before ``before`` and has no job left."""
    left = select(jobs.c.id).where(jobs.c.workflow_run == workflow_runs.c.id).exists()
    c = workflow_runs.c
    return [c.state != "running", c.finished_at < before, ~left]


def _old_runs(before: datetime) -> Select[Any]:
    return select(workflow_runs.c.id).where(*_ended(before)).order_by(workflow_runs.c.id)


def _old_fires(before: datetime) -> list[ColumnElement[bool]]:
    """Fires made before ``before`` that are not their schedule's newest, nor its newest
    that started a job or run (whose end an overlapping fire waits for)."""
    newer = schedule_fires.alias("newer")
    later = select(newer.c.fire_time).where(
        and_(
            newer.c.schedule == schedule_fires.c.schedule,
            newer.c.fire_time > schedule_fires.c.fire_time,
        )
    )
    later_started = later.where(fires.started_something(newer))
    return [
        schedule_fires.c.fired_at < before,
        later.exists(),
        or_(not_(fires.started_something(schedule_fires)), later_started.exists()),
    ]


def _readable(conn: Connection) -> int | None:
    """The lowest place of a durable reader of the event log: events after it stay."""
    query = select(func.min(cursors.c.position)).where(cursors.c.name != PRUNED_CURSOR)
    value = conn.execute(query).scalar()
    return None if value is None else int(value)


def _event_filter(ids: Collection[int], kinds: Sequence[str]) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [job_events.c.job_id.in_(list(ids))]
    if kinds:
        where.append(job_events.c.kind.in_(list(kinds)))
    return where


def _drop_events(
    conn: Connection, ids: Collection[int], kinds: Sequence[str], limit: int, now: datetime
) -> int:
    """Remove up to ``limit`` events of these jobs (of ``kinds``; all if empty)."""
    where = _event_filter(ids, kinds)
    floor = _readable(conn)
    if floor is not None:
        where.append(job_events.c.id <= floor)
    found = list(conn.scalars(select(job_events.c.id).where(*where).limit(limit)))
    if not found:
        return 0
    conn.execute(delete(job_events).where(job_events.c.id.in_(found)))
    newest = max(found)
    if newest > (notes.cursor(conn, PRUNED_CURSOR) or 0):
        notes.set_cursor(conn, PRUNED_CURSOR, newest, now)
    return len(found)


def _with_events(conn: Connection, ids: Collection[int], kinds: Sequence[str]) -> set[int]:
    """Which of these jobs still have events (of ``kinds``)."""
    query = select(job_events.c.job_id).where(*_event_filter(ids, kinds)).distinct()
    return set(conn.scalars(query))


def _count(kind: str, before: datetime, floor: int | None = None) -> Select[Any]:
    """A count of what pruning ``kind`` would remove; ``floor``: the lowest place of a
    durable reader of the event log (events after it stay, and their jobs with them)."""
    count = select(func.count())
    unread = [] if floor is None else [job_events.c.id > floor]
    if kind == "jobs":
        kept = select(job_events.c.id).where(job_events.c.job_id == jobs.c.id, *unread).exists()
        return count.select_from(jobs).where(
            *_old(before), _removable(), *([~kept] if unread else [])
        )
    if kind in ("logs", "events"):
        is_log = job_events.c.kind == _LOG
        joined = job_events.join(jobs, jobs.c.id == job_events.c.job_id)
        read = [] if floor is None else [job_events.c.id <= floor]
        return count.select_from(joined).where(
            *_old(before), is_log if kind == "logs" else ~is_log, *read
        )
    if kind == "samples":
        joined = job_samples.join(jobs, jobs.c.id == job_samples.c.job_id)
        return count.select_from(joined).where(*_old(before))
    if kind == "notifications":
        c = notifications.c
        return count.select_from(notifications).where(c.status.in_(_DONE), c.created_at < before)
    if kind == "audit":
        return count.select_from(audit_log).where(audit_log.c.at < before)
    if kind == "runs":
        return count.select_from(workflow_runs).where(*_ended(before))
    if kind == "fires":
        return count.select_from(schedule_fires).where(*_old_fires(before))
    raise ValueError(f"unknown kind of rows {kind!r}")
