"""The store contract, in domain verbs.

Every method is one short transaction and returns domain objects
(:mod:`jobyard.models`), never rows. Times are passed in (``now``), never read
from the clock here, so callers and tests control time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    Update,
    delete,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from jobyard.events.records import FeedEvent, JobEvent, LogWritten, Record
from jobyard.limits import Key, Limit
from jobyard.models import (
    SORTABLE,
    Condition,
    EventKind,
    Job,
    JobQuery,
    JobUpdate,
    NewJob,
    RunState,
    WorkerInfo,
    WorkflowRun,
)
from jobyard.states import LIVE, Control, JobState
from jobyard.store import (
    dependencies,
    eventlog,
    fires,
    limits,
    migrate,
    queue,
    runs,
    schedule_rows,
    submission,
)
from jobyard.store import workers as worker_rows
from jobyard.store.dependencies import DependencyState
from jobyard.store.engine import READ_ONLY, make_engine, normalize_url
from jobyard.store.fires import Fire
from jobyard.store.listing import job_filters, job_order
from jobyard.store.monitor import MonitorStore
from jobyard.store.rows import (
    event_from_row,
    event_row,
    fetch_jobs,
    job_columns,
    job_from_row,
    load_json,
    log_from_row,
    worker_from_row,
)
from jobyard.store.schedule_rows import ScheduleRow
from jobyard.store.tables import (
    job_dependencies,
    job_events,
    job_types,
    jobs,
    queue_state,
    workers,
)

_LIVE = [state.value for state in LIVE]
_RETRIES = 3  # attempts of a transaction that lost a race on a unique key


class StoreError(Exception):
    """A storage failure the caller can report (e.g. a duplicate name)."""


class Store:
    """One database (SQLite, PostgreSQL or MariaDB/MySQL) behind domain verbs."""

    def __init__(self, url: str) -> None:
        """Connect lazily to ``url``; bare ``postgresql://``/``mysql://`` URLs get a driver."""
        self._engine = make_engine(normalize_url(url))
        self._reader = self._engine.execution_options(**{READ_ONLY: True})
        self.monitor = MonitorStore(self._engine, self._reader)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for dialect-specific extras such as LISTEN/NOTIFY)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite``, ``postgresql`` or ``mysql`` (MariaDB included)."""
        return self._engine.dialect.name

    def _write(self) -> AbstractContextManager[Connection]:
        """A transaction that may write (on SQLite it takes the write lock at once)."""
        return self._engine.begin()

    def _read(self) -> AbstractContextManager[Connection]:
        """A transaction that only reads."""
        return self._reader.begin()

    # -- lifecycle ---------------------------------------------------------
    def migrate(self) -> None:
        """Create or upgrade the schema; safe to run from several processes at once."""
        migrate.upgrade(self._engine)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    # -- jobs --------------------------------------------------------------
    def add_jobs(self, jobs: Sequence[NewJob], now: datetime) -> list[tuple[Job, bool]]:
        """Insert a batch in one transaction; ``(job, created)`` per entry, in order.

        An entry whose ``idempotency_key`` is already taken (by a stored job or an
        earlier entry of the batch) inserts nothing and yields that job with False.
        Each created job gets a :class:`~jobyard.events.records.JobCreated` event.
        """
        for attempt in range(_RETRIES):
            try:
                with self._write() as conn:
                    return submission.insert_jobs(conn, jobs, now)
            except IntegrityError:
                # A concurrent batch took one of our keys: the next attempt finds its job.
                if attempt == _RETRIES - 1 or not any(job.idempotency_key for job in jobs):
                    raise
        raise AssertionError("unreachable")

    def get_job(self, job_id: int) -> Job | None:
        """The job with this id, or None."""
        with self._read() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return job_from_row(row) if row else None

    def list_jobs(self, query: JobQuery) -> tuple[list[Job], int]:
        """One page of jobs matching the filters, and how many match in all.

        Raises ``ValueError`` for a sort key outside :data:`SORTABLE` or a page < 1.
        """
        bad = [key for key in query.sort if key.removeprefix("-") not in SORTABLE]
        if bad or query.page < 1 or query.per_page < 1:
            raise ValueError(f"bad listing: sort {bad}, page {query.page}/{query.per_page}")
        where = job_filters(query.states, query.types, query.queues, query.search)
        page = (
            select(jobs)
            .where(*where)
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
        values = job_columns(update.values) | {"updated_at": now}
        expect = [JobState(state).value for state in update.expect]
        with self._write() as conn:
            changed = conn.execute(
                _update_jobs(values, jobs.c.id == update.job_id, jobs.c.state.in_(expect))
            ).rowcount
            if changed != 1:
                return None
            if update.event is not None:
                conn.execute(insert(job_events).values(event_row(update.job_id, update.event)))
            return fetch_jobs(conn, [update.job_id])[0]

    def delete_job(self, job_id: int, expect: frozenset[JobState]) -> bool:
        """Delete the job and its events if its state is in ``expect``; True when deleted."""
        states = [JobState(state).value for state in expect]
        with self._write() as conn:
            deleted = conn.execute(
                delete(jobs).where(jobs.c.id == job_id, jobs.c.state.in_(states))
            ).rowcount
            if deleted:
                conn.execute(delete(job_events).where(job_events.c.job_id == job_id))
                conn.execute(delete(job_dependencies).where(job_dependencies.c.job_id == job_id))
        return bool(deleted)

    def claim_jobs(
        self,
        worker: str,
        host: str,
        queues: Sequence[str] | None,
        limit: int,
        now: datetime,
        lease_until: datetime,
        *,
        tags: Collection[str] = (),
    ) -> list[Job]:
        """Claim up to ``limit`` queued jobs that are due, by priority then age.

        ``queues`` None means every queue; only jobs whose required tags are all in
        ``tags`` are taken, and no more than the cluster-wide ``max_running`` of a
        queue or type allows. Each claimed job becomes ``running`` on ``worker``
        with a new attempt and a lease until ``lease_until``, and gets a ``state``
        event. No job is ever handed to two concurrent claimers.
        """
        if limit < 1 or (queues is not None and not queues):
            return []
        with self._write() as conn:
            return queue.claim(conn, worker, host, queues, limit, now, lease_until, tags)

    def renew_leases(self, worker: str, now: datetime, lease_until: datetime) -> list[int]:
        """Extend the leases of the worker's live jobs and record its heartbeat.

        Returns the ids of the jobs the worker still owns (live and assigned to it),
        so that it can abandon a run whose job was taken from it.
        """
        mine = (jobs.c.worker == worker, jobs.c.state.in_(_LIVE))
        with self._write() as conn:
            conn.execute(_update_jobs({"lease_expires_at": lease_until}, *mine))
            conn.execute(_heartbeat(worker, now))
            return list(conn.scalars(select(jobs.c.id).where(*mine).order_by(jobs.c.id)))

    def pending_controls(self, worker: str) -> list[tuple[int, Control]]:
        """``(job id, control)`` for each live job of the worker with an intent recorded."""
        query = (
            select(jobs.c.id, jobs.c.control)
            .where(jobs.c.worker == worker, jobs.c.state.in_(_LIVE), jobs.c.control.is_not(None))
            .order_by(jobs.c.id)
        )
        with self._read() as conn:
            return [(job_id, Control(control)) for job_id, control in conn.execute(query)]

    def promote_due(self, now: datetime) -> list[int]:
        """Queue every ``scheduled`` job whose ``run_at`` ≤ ``now``; return their ids."""
        with self._write() as conn:
            return queue.promote(conn, now)

    def expired_leases(self, now: datetime) -> list[Job]:
        """Live jobs whose lease ended before ``now`` (their worker is presumed lost)."""
        return self._select_jobs(jobs.c.state.in_(_LIVE), jobs.c.lease_expires_at < now)

    def live_jobs_on_host(self, host: str) -> list[Job]:
        """Running and paused jobs on ``host``."""
        return self._select_jobs(jobs.c.state.in_(_LIVE), jobs.c.host == host)

    def _select_jobs(self, *where: ColumnElement[bool]) -> list[Job]:
        query = select(jobs).where(*where).order_by(jobs.c.id)
        with self._read() as conn:
            return [job_from_row(row) for row in conn.execute(query).mappings()]

    # -- events and logs ---------------------------------------------------
    def append_output(
        self,
        job_id: int,
        logs: Sequence[LogWritten],
        events: Sequence[Record],
        values: dict[str, Any],
    ) -> None:
        """Append log lines, then events, and set ``values`` on the job, atomically.

        ``updated_at`` changes only if ``values`` holds it.
        """
        if not (logs or events or values):
            return
        with self._write() as conn:
            if logs:
                conn.execute(insert(job_events), [event_row(job_id, line) for line in logs])
            if events:
                conn.execute(insert(job_events), [event_row(job_id, event) for event in events])
            if values:
                conn.execute(_update_jobs(job_columns(values), jobs.c.id == job_id))

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

    # -- dependencies ------------------------------------------------------
    def dependencies(self, job_ids: Collection[int]) -> dict[int, list[DependencyState]]:
        """Each job's dependencies with the upstream job's state (None: it was deleted)."""
        with self._read() as conn:
            return dependencies.of_jobs(conn, job_ids)

    def dependents(self, upstream_ids: Collection[int], states: Collection[JobState]) -> list[Job]:
        """Jobs in ``states`` that depend on any of ``upstream_ids``."""
        with self._read() as conn:
            return dependencies.dependents(conn, upstream_ids, states)

    # -- workflow runs -----------------------------------------------------
    def add_workflow_run(
        self,
        workflow: str,
        args: dict[str, Any],
        trigger: str,
        nodes: Sequence[NewJob],
        edges: Sequence[tuple[int, int]],
        now: datetime,
    ) -> tuple[WorkflowRun, list[Job]]:
        """A run and its node jobs in one transaction; ``edges`` are (waiting, upstream) indexes."""
        with self._write() as conn:
            return runs.insert_run(conn, workflow, args, trigger, nodes, edges, now)

    def get_run(self, run_id: int) -> WorkflowRun | None:
        with self._read() as conn:
            return runs.get_run(conn, run_id)

    def list_runs(
        self, page: int, per_page: int, workflow: str | None = None, state: str | None = None
    ) -> tuple[list[WorkflowRun], int]:
        with self._read() as conn:
            return runs.list_runs(conn, page, per_page, workflow, state)

    def run_is_live(self, run_id: int) -> bool:
        """Whether a node's newest job is not terminal yet (an index lookup, not a scan)."""
        with self._read() as conn:
            return runs.has_live_node(conn, run_id)

    def run_jobs(self, run_id: int) -> list[Job]:
        """Every job of the run (restarted nodes have several), oldest first."""
        return self._select_jobs(jobs.c.workflow_run == run_id)

    def update_run(
        self, run_id: int, expect: Collection[RunState], values: dict[str, Any], now: datetime
    ) -> WorkflowRun | None:
        """Compare-and-set on the run's state; None when it was not in ``expect``."""
        with self._write() as conn:
            return runs.update_run(conn, run_id, expect, values, now)

    # -- queues ------------------------------------------------------------
    def set_queue_paused(self, name: str, paused: bool, now: datetime) -> None:
        values = {"paused": paused, "updated_at": now}
        self._upsert(queue_state, queue_state.c.name == name, values, {"name": name})

    def paused_queues(self) -> set[str]:
        with self._read() as conn:
            query = select(queue_state.c.name).where(queue_state.c.paused == true())
            return {name for (name,) in conn.execute(query)}

    def queue_counts(self) -> dict[str, dict[str, int]]:
        """Jobs per queue and state."""
        query = select(jobs.c.queue, jobs.c.state, func.count()).group_by(
            jobs.c.queue, jobs.c.state
        )
        counts: dict[str, dict[str, int]] = {}
        with self._read() as conn:
            for name, state, count in conn.execute(query):
                counts.setdefault(name, {})[state] = int(count)
        return counts

    # -- schedules ---------------------------------------------------------
    def schedule_rows(self) -> dict[str, ScheduleRow]:
        with self._read() as conn:
            return schedule_rows.all_rows(conn)

    def create_schedule(self, name: str, definition: dict[str, Any], now: datetime) -> bool:
        with self._write() as conn:
            return schedule_rows.create(conn, name, definition, now)

    def set_schedule_paused(self, name: str, paused: bool, now: datetime) -> None:
        with self._write() as conn:
            schedule_rows.set_paused(conn, name, paused, now)

    def delete_schedule(self, name: str) -> bool:
        with self._write() as conn:
            return schedule_rows.remove(conn, name)

    # -- schedule fires ----------------------------------------------------
    def claim_fire(self, schedule: str, fire_time: datetime, now: datetime) -> bool:
        """Record that ``schedule`` fires at ``fire_time``; False if it already did."""
        with self._write() as conn:
            return fires.claim(conn, schedule, fire_time, now)

    def set_fire_target(
        self, schedule: str, fire_time: datetime, job_id: int | None, run_id: int | None
    ) -> None:
        with self._write() as conn:
            fires.set_target(conn, schedule, fire_time, job_id, run_id)

    def last_fire(self, schedule: str) -> Fire | None:
        with self._read() as conn:
            return fires.last(conn, schedule)

    def unmet_edges(self, upstream_id: int) -> list[tuple[int, Condition]]:
        """(waiting or held job, condition) for edges out of ``upstream_id`` not counted yet."""
        with self._read() as conn:
            return dependencies.unmet_edges(conn, upstream_id)

    def meet_edges(self, upstream_id: int, job_ids: Sequence[int]) -> list[int]:
        """Count these edges as met (each once); returns the jobs with none left."""
        with self._write() as conn:
            return dependencies.meet_edges(conn, upstream_id, job_ids)

    def unsettled_upstreams(self) -> list[int]:
        with self._read() as conn:
            return dependencies.unsettled_upstreams(conn)

    def ready_waiting(self) -> list[Job]:
        """``waiting`` jobs with no dependency left (a settle was interrupted)."""
        return self._select_jobs(jobs.c.state == JobState.WAITING.value, jobs.c.deps_pending <= 0)

    def jobs_by_id(self, job_ids: Collection[int]) -> list[Job]:
        with self._read() as conn:
            return fetch_jobs(conn, job_ids)

    def job_states(self, job_ids: Collection[int]) -> dict[int, JobState]:
        with self._read() as conn:
            return dependencies.states(conn, job_ids)

    def repoint_dependencies(self, old: int, new: int) -> list[int]:
        """Jobs that waited for ``old`` (and have not run) wait for ``new`` instead."""
        with self._write() as conn:
            return dependencies.repoint(conn, old, new)

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

    def feed(
        self,
        after_id: int,
        limit: int = 1000,
        *,
        kinds: Sequence[str] = (),
        job_id: int | None = None,
        types: Sequence[str] = (),
        queues: Sequence[str] = (),
    ) -> list[FeedEvent]:
        """Events of all jobs (or the filtered ones) with id > ``after_id``, in id order."""
        query = eventlog.feed_query(
            after_id, limit, kinds=kinds, job_id=job_id, types=types, queues=queues
        )
        with self._read() as conn:
            return [eventlog.feed_event(row) for row in conn.execute(query).mappings()]

    def last_event_id(self) -> int:
        """The newest event id (0 when there is none)."""
        with self._read() as conn:
            return int(conn.execute(eventlog.last_id_query()).scalar_one())

    def _select_events(self, query: Select[Any]) -> list[JobEvent]:
        with self._read() as conn:
            return [event_from_row(row) for row in conn.execute(query).mappings()]

    # -- job types ---------------------------------------------------------
    def put_job_type(self, name: str, definition: dict[str, Any], now: datetime) -> bool:
        """Store the definition under ``name``; True when created, False when replaced."""
        return self._upsert(
            job_types,
            job_types.c.name == name,
            {"definition": definition, "updated_at": now},
            {"name": name, "created_at": now},
        )

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

    # -- limits ------------------------------------------------------------
    def limits(self) -> dict[Key, int]:
        """Every stored ``max_running`` limit by (scope, name)."""
        with self._read() as conn:
            return limits.read(conn)

    def sync_limits(self, wanted: Sequence[Limit], owned: Collection[Key], now: datetime) -> bool:
        """Make the configuration's limits the stored ones (see :func:`limits.sync`)."""
        with self._write() as conn:
            return limits.sync(conn, wanted, owned, now)

    def set_limit(self, key: Key, max_running: int | None, now: datetime) -> None:
        """Set or (with None) remove the limit of a job type stored through the API."""
        with self._write() as conn:
            limits.put(conn, key, max_running, now)

    # -- workers -----------------------------------------------------------
    def register_worker(self, info: WorkerInfo) -> None:
        """Insert the worker, or replace the row of a worker with the same name."""
        values = dataclasses.asdict(info)
        name = values.pop("name")
        self._upsert(workers, workers.c.name == name, values, {"name": name})

    def worker_heartbeat(self, name: str, now: datetime) -> None:
        """Record that the worker is alive at ``now``."""
        with self._write() as conn:
            conn.execute(_heartbeat(name, now))

    def unregister_worker(self, name: str) -> None:
        """Forget the worker (its jobs are left as they are)."""
        with self._write() as conn:
            conn.execute(delete(workers).where(workers.c.name == name))

    def get_worker(self, name: str) -> WorkerInfo | None:
        """The registered worker, or None."""
        with self._read() as conn:
            row = conn.execute(select(workers).where(workers.c.name == name)).mappings().first()
        return worker_from_row(row) if row else None

    def list_workers(self) -> list[WorkerInfo]:
        """Every registered worker, by name."""
        with self._read() as conn:
            rows = conn.execute(select(workers).order_by(workers.c.name)).mappings()
            return [worker_from_row(row) for row in rows]

    def worker_jobs(self, names: Collection[str] | None = None) -> dict[str, list[int]]:
        """The ids of the running and paused jobs of each worker (of ``names``, or all)."""
        with self._read() as conn:
            return worker_rows.jobs_by_worker(conn, names)

    def request_drain(self, name: str, timeout: float | None, now: datetime) -> bool:
        """Ask the worker to drain (it reads this at its next heartbeat); False if unknown."""
        with self._write() as conn:
            return worker_rows.request_drain(conn, name, timeout, now)

    def set_worker_state(self, name: str, state: str) -> None:
        """Record the state the worker is in (``running``, ``draining``)."""
        with self._write() as conn:
            worker_rows.set_state(conn, name, state)

    def _upsert(
        self,
        table: Table,
        key: ColumnElement[bool],
        values: dict[str, Any],
        key_values: dict[str, Any],
    ) -> bool:
        """Update the row matching ``key`` or insert one; True when inserted."""
        for attempt in range(_RETRIES):
            try:
                with self._write() as conn:
                    if conn.execute(update(table).where(key).values(values)).rowcount:
                        return False
                    conn.execute(insert(table).values(key_values | values))
                    return True
            except IntegrityError:
                # Another process inserted the same key first: update it instead.
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")


def _update_jobs(values: dict[str, Any], *where: ColumnElement[bool]) -> Update:
    return update(jobs).where(*where).values(values)


def _heartbeat(worker: str, now: datetime) -> Update:
    return update(workers).where(workers.c.name == worker).values(heartbeat_at=now)
