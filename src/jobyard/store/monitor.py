"""The monitoring side of the store: samples, SLA history, the notification outbox.

One part of :class:`~jobyard.store.store.Store`, which hands it its engines:
``store.monitor.add_samples(...)``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from jobyard.events.records import FeedEvent, NotificationAttempted
from jobyard.models import EventKind
from jobyard.store import guard, notes, samples, stats
from jobyard.store.eventlog import feed_event, feed_query
from jobyard.store.histograms import JobHistograms
from jobyard.store.part import Part
from jobyard.store.rows import event_row
from jobyard.store.tables import job_events


class MonitorStore(Part):
    """Monitoring on SQL; its resource samples and SLA history are a
    :class:`~jobyard.store.protocol.SampleStore`."""

    # -- resource samples ----------------------------------------------------
    def add_samples(
        self,
        job_id: int,
        attempt: int,
        rows: Sequence[tuple[datetime, float, int]],
        usage: tuple[float, int] | None = None,
    ) -> bool:
        """Store samples and, with ``usage`` (CPU seconds, peak RSS so far), show it on the
        job while the attempt is live, in one transaction; False (nothing stored) if the
        attempt is not the job's current one (the job was removed or retried)."""
        if not (rows or usage):
            return True
        with self._write() as conn:
            if not guard.holds(conn, job_id, attempt=attempt):
                return False
            if rows:
                samples.add(conn, job_id, attempt, rows)
            if usage is not None:
                samples.set_usage(conn, job_id, attempt, *usage)
            return True

    def thin_samples(self, job_id: int, attempt: int) -> int:
        with self._write() as conn:
            return samples.thin(conn, job_id, attempt)

    def forget_old_samples(self, job_id: int, attempt: int) -> None:
        with self._write() as conn:
            samples.forget_old_attempts(conn, job_id, attempt)

    def samples(self, job_id: int, attempt: int | None = None) -> list[dict[str, Any]]:
        with self._read() as conn:
            return samples.listing(conn, job_id, attempt)

    # -- SLA history ---------------------------------------------------------
    def recent_runtimes(self, job_type: str, limit: int) -> list[float]:
        with self._read() as conn:
            return samples.recent_runtimes(conn, job_type, limit)

    def breached_budgets(self, job_id: int) -> frozenset[str]:
        with self._read() as conn:
            return samples.breached_budgets(conn, job_id)

    # -- reading the event log -----------------------------------------------
    def event_ids(self, after_id: int, limit: int) -> list[int]:
        """Ids of the next events (every kind), to see which ids are still missing."""
        query = (
            select(job_events.c.id)
            .where(job_events.c.id > after_id)
            .order_by(job_events.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return list(conn.scalars(query))

    def first_event_since(self, at: datetime) -> int | None:
        query = select(func.min(job_events.c.id)).where(job_events.c.at >= at)
        with self._read() as conn:
            return conn.execute(query).scalar()

    def events_between(
        self,
        after_id: int,
        upto_id: int,
        kinds: Sequence[str],
        *,
        states: Collection[str] | None = None,
        reasons: Collection[str] = (),
    ) -> list[FeedEvent]:
        """Events of ``kinds`` with ``after_id`` < id ≤ ``upto_id``, with their job's details.

        With ``states``, a ``state`` event is read only if it reached one of them or
        its ``reason`` is one of ``reasons``: the many a reader cannot use stay unread.
        Without ``states`` every event of ``kinds`` is read (``reasons`` is not looked at).
        """
        query = feed_query(after_id, upto_id - after_id, kinds=kinds).where(
            job_events.c.id <= upto_id
        )
        with self._read() as conn:
            rows = conn.execute(_wanted(query, states, reasons)).mappings()
            return [feed_event(row) for row in rows]

    def job_events_after(
        self,
        job_id: int,
        after_id: int,
        kinds: Sequence[str],
        *,
        states: Collection[str],
        reasons: Collection[str] = (),
    ) -> list[FeedEvent]:
        """The job's events as :meth:`events_between` reads them, every one after
        ``after_id`` (a job has few of these kinds)."""
        query = feed_query(after_id, JOB_EVENTS_READ, kinds=kinds, job_id=job_id)
        with self._read() as conn:
            rows = conn.execute(_wanted(query, states, reasons)).mappings()
            return [feed_event(row) for row in rows]

    def log_tail(self, job_id: int, lines: int) -> list[str]:
        """The job's last ``lines`` log lines, oldest first."""
        query = (
            select(job_events.c.line)
            .where(job_events.c.job_id == job_id, job_events.c.kind == EventKind.LOG.value)
            .order_by(job_events.c.seq.desc())
            .limit(lines)
        )
        with self._read() as conn:
            return [str(line) for line in reversed(list(conn.scalars(query)))]

    # -- the outbox ----------------------------------------------------------
    def cursor(self, name: str) -> int | None:
        with self._read() as conn:
            return notes.cursor(conn, name)

    def known_sources(self, event_ids: Collection[int]) -> set[int]:
        with self._read() as conn:
            return notes.known_sources(conn, event_ids)

    def add_notifications(
        self, rows: Sequence[dict[str, Any]], cursor: tuple[str, int] | None, now: datetime
    ) -> None:
        """Store new messages and move the reader's cursor, in one transaction."""
        with self._write() as conn:
            notes.add_many(conn, rows)
            if cursor is not None:
                notes.set_cursor(conn, *cursor, now)

    def add_untold_notifications(self, rows: Sequence[dict[str, Any]]) -> int:
        """Store the messages of events that made none yet (by ``source_event``), without
        moving a cursor; how many were stored. The notifier's pass may store some of them
        at the same moment (each event's messages are unique): they are not stored twice."""
        for _ in range(3):
            try:
                with self._write() as conn:
                    done = notes.known_sources(conn, {row["source_event"] for row in rows})
                    untold = [row for row in rows if row["source_event"] not in done]
                    notes.add_many(conn, untold)
                    return len(untold)
            except IntegrityError:  # the pass stored some of them meanwhile: look again
                continue
        return 0

    def claim_due_notifications(
        self, now: datetime, until: notes.Marks, limit: int
    ) -> list[dict[str, Any]]:
        """Take up to ``limit`` due messages, each until its channel's time in ``until``."""
        with self._write() as conn:
            return notes.claim_due(conn, now, until, limit)

    def record_delivery(
        self, note_id: int, values: dict[str, Any], event: NotificationAttempted | None
    ) -> dict[str, Any] | None:
        """Store a delivery outcome and its event (on the notification's job) atomically."""
        with self._write() as conn:
            item = notes.record(conn, note_id, values)
            job_id = None if item is None else item["job_id"]
            # a removed job gets no event (its notifications stay, as sent)
            if event is not None and job_id is not None and guard.holds(conn, job_id):
                conn.execute(insert(job_events), [event_row(job_id, event)])
            return item

    def notifications(
        self,
        page: int,
        per_page: int,
        *,
        status: Collection[str] = (),
        event: Collection[str] = (),
        job_id: int | None = None,
        run_id: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        with self._read() as conn:
            return notes.page(
                conn, page, per_page, status=status, event=event, job_id=job_id, run_id=run_id
            )

    def notification_counts(self) -> dict[tuple[str, str, str], int]:
        with self._read() as conn:
            return notes.counts(conn)

    def sla_breaches(self) -> int:
        with self._read() as conn:
            return notes.breaches(conn)

    # -- metrics ---------------------------------------------------------------
    def stats(self, now: datetime) -> stats.Stats:
        with self._read() as conn:
            return stats.collect(conn, now)

    def job_histograms(self) -> JobHistograms:
        with self._read() as conn:
            return stats.job_histograms(conn)


JOB_EVENTS_READ = 10_000  # a job's events of a few kinds read at once: its ends, its breaches


def _wanted(
    query: Select[Any], states: Collection[str] | None, reasons: Collection[str]
) -> Select[Any]:
    """``query`` with, of its ``state`` events, only those that reached ``states`` or
    have one of ``reasons`` (every one without ``states``)."""
    if states is not None:
        data = job_events.c.data
        query = query.where(
            or_(
                job_events.c.kind != EventKind.STATE.value,
                data["state"].as_string().in_(list(states)),
                data["reason"].as_string().in_(list(reasons)),
            )
        )
    return query
