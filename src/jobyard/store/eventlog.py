"""Queries of the durable event log for live streams (the feed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select, text

from jobyard.events.records import FeedEvent
from jobyard.store.part import Part
from jobyard.store.rows import event_from_row
from jobyard.store.tables import job_events, jobs


class SqlEventLog(Part):
    """The event log of every job, as live streams read it."""

    def feed(
        self,
        after_id: int,
        limit: int = 1000,
        *,
        kinds: Sequence[str] = (),
        job_id: int | None = None,
        types: Sequence[str] = (),
        queues: Sequence[str] = (),
        workflow_run: int | None = None,
        newest: bool = False,
    ) -> list[FeedEvent]:
        """Events of all jobs (or the filtered ones) with id > ``after_id``, in id order:
        the first ``limit`` of them, or with ``newest`` the last ``limit``."""
        query = feed_query(
            after_id,
            limit,
            kinds=kinds,
            job_id=job_id,
            types=types,
            queues=queues,
            workflow_run=workflow_run,
        )
        if newest:
            query = query.order_by(None).order_by(job_events.c.id.desc())
        with self._read() as conn:
            found = [feed_event(row) for row in conn.execute(query).mappings()]
        return found[::-1] if newest else found

    def latest(self, limit: int) -> list[tuple[int, datetime]]:
        """Id and time of the newest ``limit`` events, oldest first."""
        query = (
            select(job_events.c.id, job_events.c.at).order_by(job_events.c.id.desc()).limit(limit)
        )
        with self._read() as conn:
            return [(int(row.id), row.at) for row in reversed(conn.execute(query).all())]

    def transactions(self) -> PgTransactions | None:
        """PostgreSQL's transaction ids, for :class:`~jobyard.events.gaps.GapWait`; None
        elsewhere."""
        return PgTransactions(self._peek) if self._dialect == "postgresql" else None

    def last_event_id(self) -> int:
        """The newest event id (0 when there is none)."""
        with self._read() as conn:
            return int(conn.execute(last_id_query()).scalar_one())


class PgTransactions:
    """:class:`~jobyard.events.gaps.Transactions` on PostgreSQL (xid8 turns into a number
    only through its text)."""

    def __init__(self, peek: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._peek = peek  # one statement, no BEGIN

    def mark(self) -> int:
        """A transaction id given now (its own): every one given before it is lower."""
        with self._peek() as conn:
            return int(conn.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one())

    def oldest_running(self) -> int:
        """The oldest transaction id still running (the next to be given, if none runs)."""
        query = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        with self._peek() as conn:
            return int(conn.execute(query).scalar_one())


def feed_query(
    after_id: int,
    limit: int,
    *,
    kinds: Sequence[str] = (),
    job_id: int | None = None,
    types: Sequence[str] = (),
    queues: Sequence[str] = (),
    workflow_run: int | None = None,
) -> Select[Any]:
    """Events with id > ``after_id`` in id order, with their job's type and queue (and run)."""
    query = (
        select(
            job_events,
            jobs.c.type.label("job_type"),
            jobs.c.queue.label("job_queue"),
            jobs.c.workflow_run.label("job_workflow_run"),
            jobs.c.node.label("job_node"),
        )
        .select_from(job_events.outerjoin(jobs, jobs.c.id == job_events.c.job_id))
        .where(job_events.c.id > after_id)
        .order_by(job_events.c.id)
        .limit(limit)
    )
    if kinds:
        query = query.where(job_events.c.kind.in_(list(kinds)))
    if job_id is not None:
        query = query.where(job_events.c.job_id == job_id)
    if types:
        query = query.where(jobs.c.type.in_(list(types)))
    if queues:
        query = query.where(jobs.c.queue.in_(list(queues)))
    if workflow_run is not None:
        query = query.where(jobs.c.workflow_run == workflow_run)
    return query


def last_id_query() -> Select[Any]:
    return select(func.coalesce(func.max(job_events.c.id), 0))


def feed_event(row: Mapping[Any, Any]) -> FeedEvent:
    """A row of :func:`feed_query` as the live feed reads it."""
    return FeedEvent(
        event_from_row(row),
        row["job_type"],
        row["job_queue"],
        row["job_workflow_run"],
        row["job_node"],
    )
