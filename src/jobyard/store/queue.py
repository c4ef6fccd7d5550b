"""Claiming and promoting jobs: a locking read, then an update of what it locked.

PostgreSQL and MariaDB lock the selected rows with ``FOR UPDATE SKIP LOCKED``, so
concurrent claimers take disjoint sets. SQLite ignores the clause; there the
transaction began with ``BEGIN IMMEDIATE`` and already holds the only write lock.
MariaDB refuses ``UPDATE … WHERE id IN (SELECT … LIMIT)``, hence two statements.
A claim that took all it was asked for reads, locking nothing, whether due jobs
are left, so that its worker claims again only then (SQLite, which locks no rows,
takes one row more in its claim's read instead, unless the claim goes the
limit-aware way).
Which rows the claim may lock — routing tags, cluster-wide ``max_running`` — is
decided in :mod:`jobyard.store.slots`.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from jobyard import faults
from jobyard.events.records import JobClaimed, JobPromoted
from jobyard.limits import Key, Scope, keys_of
from jobyard.models import FRESH_ATTEMPT, Ended, Job, JobEnd, claim_values
from jobyard.routing import routes_for
from jobyard.states import LIVE, Control, JobState
from jobyard.store import limits as limit_rows
from jobyard.store import slots
from jobyard.store.coltypes import MYSQL
from jobyard.store.dependencies import settle_edges
from jobyard.store.guard import JOBS_BY_IDS
from jobyard.store.jobs import write_ends
from jobyard.store.part import Part
from jobyard.store.protocol import (
    Claimed,
    ClaimOrder,
    Met,
    after_settle,
    to_settle,
    with_live_runs,
)
from jobyard.store.rows import event_row, job_columns, job_from_row, jobs_where, whole_event_row
from jobyard.store.tables import job_events, jobs, limits, queue_state, workers

QUEUED = JobState.QUEUED.value
LIMITS_READ_EVERY = 10.0  # seconds: how long a process trusts what it read of the limits
_LIVE = [state.value for state in LIVE]
#: A renewal's lock of the jobs it found, in id order (see ``renew_leases``).
_LOCK_FOR_RENEWAL = JOBS_BY_IDS.with_only_columns(
    jobs.c.id, jobs.c.worker, jobs.c.state
).with_for_update()


class SqlQueue(Part):
    """:class:`~jobyard.store.protocol.QueueStore` on SQL."""

    # Whether this process's last claim met jobs of limited scopes (see claim()).
    _limited = True
    # Whether limits were stored when this process last read them (see _lock_first), and
    # when to read them again: a claim of this process pays a savepoint while they were.
    _limits_stored = True
    _limits_due = 0.0

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
        idle_poll: bool = False,
    ) -> Claimed:
        """Claim up to ``limit`` queued jobs that are due, by priority then age.

        ``queues`` None means every queue; only jobs whose required tags are all in
        ``tags`` are taken, and no more than the cluster-wide ``max_running`` of a
        queue or type allows. Each claimed job becomes ``running`` on ``worker``
        with a new attempt and a lease until ``lease_until``, and gets a ``state``
        event. No job is ever handed to two concurrent claimers. A claim that took
        ``limit`` jobs reads, after its update and before its commit, whether a due
        job still waits (``more``): a plain read, which locks nothing and may count
        rows another claimer holds locked. On SQLite, which locks no rows, the claim's
        own read takes one row more than ``limit`` instead, unless the claim goes the
        limit-aware way (it met jobs of limited scopes).
        """
        if limit < 1 or (queues is not None and not queues):
            return Claimed([], more=False)
        if idle_poll and not self._any_queued(queues, now, tags):
            return Claimed([], more=False)
        order = ClaimOrder(worker, host, queues, limit, lease_until, tags)
        with self._write() as conn:
            return self._claim(conn, order, now)

    def end_and_claim(
        self,
        ends: Sequence[JobEnd],
        now: datetime,
        order: ClaimOrder,
        *,
        settle: Met | None = None,
        released_only: bool = False,
    ) -> tuple[list[Ended | None], Claimed | None]:
        """The ends (:meth:`SqlJobs.end_jobs`), their edges with ``settle``, then a claim,
        in one transaction: one commit where a worker took three (and a thread hand-off
        between them). The claim may take the dependents the ends released."""
        events: list[dict[str, Any]] = []  # the ends' and the claim's, in one insert
        settled = None
        with self._write() as conn:
            ended = write_ends(conn, ends, now, events) if ends else []
            if settle is not None and (upstreams := to_settle(ended)):
                # The releases' events after the ends', in the one insert before the
                # commit: an event id taken is committed a moment later (readers that
                # meet a gap in the ids wait for it, but not forever). The states the
                # ends just wrote need no reading.
                states = {e.job.id: e.job.state for e in ended if e is not None}
                settled = settle_edges(conn, upstreams, settle, now, events, states)
                faults.reach("end.settle")
                ended = after_settle(ended, upstreams, settled)
            claimed = None
            if not released_only or (settled is not None and settled.released):
                claimed = self._claim(conn, order, now, events)
            if events:
                conn.execute(_INSERT_EVENT, events)
        if ends:
            faults.reach("end.after_commit")
        return with_live_runs(ended, settled, claimed), claimed

    def _claim(
        self,
        conn: Connection,
        order: ClaimOrder,
        now: datetime,
        events: list[dict[str, Any]] | None = None,
    ) -> Claimed:
        worker, host, queues, limit, lease_until, tags = order
        if limit < 1 or (queues is not None and not queues):
            return Claimed([], more=False)
        taken = claim(
            conn,
            worker,
            host,
            queues,
            limit,
            now,
            lease_until,
            tags,
            # Limits stored once are read again now and then, by a claim that goes the
            # limit-aware way: one removed since costs the claims nothing for long.
            limited=self._limited or (self._limits_stored and time.monotonic() > self._limits_due),
            release=self._limits_stored,
            events=events,
        )
        claimed, self._limited = taken.jobs, taken.limited
        if taken.stored is not None:
            self._limits_stored = taken.stored
            self._limits_due = time.monotonic() + LIMITS_READ_EVERY
        more = len(claimed) == limit and (
            taken.left if taken.left is not None else any_queued(conn, queues, now, tags)
        )
        if claimed:
            faults.reach("claim.before_commit")
        return Claimed(claimed, more)

    def _any_queued(
        self, queues: Sequence[str] | None, now: datetime, tags: Collection[str]
    ) -> bool:
        """:func:`any_queued` in a read of its own, which takes no lock on SQLite (a
        claim takes the write lock there, even when it finds nothing)."""
        with self._peek() as conn:
            return any_queued(conn, queues, now, tags)

    def renew_leases(
        self,
        worker: str,
        now: datetime,
        lease_until: datetime,
        job_ids: Collection[int] | None = None,
    ) -> list[int]:
        """Extend the leases of the worker's live jobs and record its heartbeat.

        Only those among ``job_ids`` when given (the jobs its process runs). Returns
        the ids of the jobs the worker still owns (live and assigned to it), so that
        it can abandon a run whose job was taken from it.

        On a server database the rows are locked in id order, by their ids alone (so
        through the primary key), before they are written, as ``guard.lock_jobs`` and a
        submission's read of its running dependencies lock them: an update of the
        worker's rows takes them in the order it finds them (the heap's on PostgreSQL,
        the ``(worker, state)`` index's on MariaDB), which could deadlock with a
        submission holding a shared lock on two of them.
        """
        mine: list[ColumnElement[bool]] = [jobs.c.worker == worker, jobs.c.state.in_(_LIVE)]
        if job_ids is not None:
            mine.append(jobs.c.id.in_(list(job_ids)))
        with self._write() as conn:
            held = list(conn.scalars(select(jobs.c.id).where(*mine).order_by(jobs.c.id)))
            if held and self._dialect != "sqlite":
                rows = conn.execute(_LOCK_FOR_RENEWAL, {"ids": held})
                held = [job_id for job_id, who, state in rows if who == worker and state in _LIVE]
            if held:
                conn.execute(
                    update(jobs).where(jobs.c.id.in_(held)).values(lease_expires_at=lease_until)
                )
            conn.execute(update(workers).where(workers.c.name == worker).values(heartbeat_at=now))
            return held

    def live_controls(self, worker: str) -> dict[int, Control | None]:
        """Each live job of the worker, with the intent recorded on it (None: none)."""
        query = (
            select(jobs.c.id, jobs.c.control)
            .where(jobs.c.worker == worker, jobs.c.state.in_(_LIVE))
            .order_by(jobs.c.id)
        )
        with self._peek() as conn:
            rows = conn.execute(query).all()  # read to the end: no BEGIN ends the statement
        return {job_id: Control(control) if control else None for job_id, control in rows}

    def promote_due(self, now: datetime) -> list[int]:
        """Queue every ``scheduled`` job whose ``run_at`` ≤ ``now``; return their ids.

        Called twice a second, and nearly always with nothing due: a read (which on
        SQLite takes no lock) looks first, so that an idle pass takes no write lock.
        """
        with self._peek() as conn:
            if conn.execute(_ANY_DUE, {"now": now}).first() is None:
                return []
        with self._write() as conn:
            return promote(conn, now)

    def expired_leases(self, now: datetime) -> list[Job]:
        """Live jobs whose lease ended before ``now`` (their worker is presumed lost),
        less those whose row another session holds: a worker stopped, or cut off,
        inside a transaction holds its jobs' rows until the server ends its session,
        and the scheduler's loop would wait on them with everything else it does."""
        expired = (jobs.c.state.in_(_LIVE), jobs.c.lease_expires_at < now)
        with self._read() as conn:
            return jobs_where(conn, *expired, skip_locked=True)

    def live_jobs_on_host(self, host: str) -> list[Job]:
        """Running and paused jobs on ``host``."""
        with self._read() as conn:
            return jobs_where(conn, jobs.c.state.in_(_LIVE), jobs.c.host == host)

    def set_queue_paused(self, name: str, paused: bool, now: datetime) -> None:
        """Pause a queue (its jobs are not claimed) or resume it."""
        values = {"paused": paused, "updated_at": now}
        self._upsert(queue_state, queue_state.c.name == name, values, {"name": name})

    def start_paused(self, names: Collection[str], now: datetime) -> set[str]:
        paused: set[str] = set()
        with self._write() as conn:
            known = select(queue_state.c.name).where(queue_state.c.name.in_(list(names)))
            # In one order everywhere: two processes starting at once wait on the same
            # first key, rather than each on the other's (a deadlock).
            for name in sorted(set(names) - set(conn.scalars(known))):
                try:
                    with conn.begin_nested():  # another process may start it at once
                        row = {"name": name, "paused": True, "updated_at": now}
                        conn.execute(insert(queue_state), [row])
                except IntegrityError:
                    continue
                paused.add(name)
        return paused

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


class Taken(NamedTuple):
    """What a claim took, in claim order, and what it saw besides."""

    jobs: list[Job]
    limited: bool  # it met jobs of scopes with max_running limits
    left: bool | None  # a job it could have taken was left; None: not read
    stored: bool | None = None  # whether any limits are stored; None: not read


def claim(
    conn: Connection,
    worker: str,
    host: str,
    queues: Sequence[str] | None,
    limit: int,
    now: datetime,
    lease_until: datetime,
    tags: Collection[str] = (),
    *,
    limited: bool = True,
    release: bool = True,
    events: list[dict[str, Any]] | None = None,
) -> Taken:
    """Mark up to ``limit`` ready jobs as running on ``worker``.

    Only jobs whose required tags are among ``tags`` are taken, within the limits
    (see :func:`_lock_first`). ``limited`` says whether the last claim met jobs of
    limited scopes; ``release`` that limits may be stored (see :func:`_lock_first`).
    SQLite locks no rows: its read takes one row more than
    ``limit``, which says whether a job was ``left``. Given ``events``, the claim's
    event rows go there for the caller to insert.
    """
    routes = routes_for(tags)
    peek = 1 if conn.dialect.name == "sqlite" else 0
    params = {"now": now, "routes": routes, "limit": limit + peek, "queues": list(queues or ())}
    locked, caps = _lock_first(
        conn, params, queues is not None, limit, limited=limited, release=release
    )
    left, met, stored = None, False, None if caps is None else bool(caps)
    if caps:
        claimable = _claimable(queues, now, routes)
        locked, met = slots.lock_claimable(conn, claimable, limit, caps)
    elif peek:
        left, locked = len(locked) > limit, locked[:limit]
    if not locked:
        return Taken([], met, left, stored)
    # The locked rows cannot change meanwhile: the jobs are what the claim makes of them.
    # Each job built once, with the claim's values (a row reads like a Job's fields).
    claimed = [
        job_from_row(_job_columns(row) | claim_values(row, worker, host, now, lease_until))
        for row in locked
    ]
    conn.execute(_CLAIM, [_claim_params(job) for job in claimed])
    rows = [
        whole_event_row(j.id, JobClaimed(at=j.updated_at, attempt=j.attempt, worker=worker))
        for j in claimed
    ]
    if events is not None:
        events += rows
    else:
        conn.execute(_INSERT_EVENT, rows)
    return Taken(claimed, met, left, stored)


def _lock_first(
    conn: Connection,
    params: dict[str, Any],
    with_queues: bool,
    limit: int,
    *,
    limited: bool,
    release: bool = True,
) -> tuple[list[Row[Any]], dict[Key, int] | None]:
    """The first ready jobs, locked; and the stored limits when the claim must go the
    limit-aware way (:func:`jobyard.store.slots.lock_claimable`), else none.

    It must when one of those jobs is of a limited scope (a queue or type with
    ``max_running``). Limits stored for other scopes cost the claim nothing but, on
    PostgreSQL, a savepoint (below). After a claim
    that met limited jobs (``limited``) the limits are read first (none stored: the
    jobs are locked as without limits). SQLite and PostgreSQL learn whether a job is
    limited with its row; MariaDB reads the limits first (InnoDB's locking read
    would lock the limits' index too). Only the first ``limit`` rows count
    (``params`` may ask for one more: SQLite's look at whether jobs are left).

    On PostgreSQL, when limits may be stored (``release``: this process last read
    some), the rows are locked in a savepoint, rolled back when they are limited:
    held while the claim waits its turn at the scopes' locks, they would be skipped
    by the claimer ahead of it, which would start younger or less urgent jobs of the
    scope in their place. The limits are None when not read.
    """
    if limited:
        caps = limit_rows.read(conn)
        return ([] if caps else list(conn.execute(_CLAIMABLE[with_queues], params))), caps
    if conn.dialect.name in MYSQL:
        stored = limit_rows.read(conn)
        locked = list(conn.execute(_CLAIMABLE[with_queues], params))
        met = any(key in stored for row in locked[:limit] for key in keys_of(row))
        return locked, stored if met else {}
    query = _CLAIMABLE_UNLESS_LIMITED[with_queues]
    if not (release and conn.dialect.name == "postgresql"):
        locked = list(conn.execute(query, params))
        met = any(row.limited for row in locked[:limit])
        return locked, limit_rows.read(conn) if met else None
    with conn.begin_nested() as first:
        locked = list(conn.execute(query, params))
        if not any(row.limited for row in locked[:limit]):
            return locked, None
        first.rollback()  # their locks go with it
    caps = limit_rows.read(conn)
    # Limits removed meanwhile: the rows are locked again, as without limits.
    return ([] if caps else list(conn.execute(query, params))), caps


def any_queued(
    conn: Connection, queues: Sequence[str] | None, now: datetime, tags: Collection[str]
) -> bool:
    """Whether a due job waits in ``queues`` (None: any) that a worker with ``tags`` may
    run, in a queue not paused, whatever the limits. A plain read: it locks nothing, and
    may count a job another claimer holds locked."""
    params = {"now": now, "routes": routes_for(tags), "queues": list(queues or ())}
    return conn.execute(_ANY_QUEUED[queues is not None], params).first() is not None


def promote(conn: Connection, now: datetime) -> list[int]:
    """Queue the scheduled jobs whose ``run_at`` has come; return their ids."""
    due = (
        select(jobs.c.id)
        .where(jobs.c.state == JobState.SCHEDULED.value, jobs.c.run_at <= now)
        .order_by(jobs.c.id)
    )
    ids = _lock_ids(conn, due)
    if not ids:
        return []
    conn.execute(update(jobs).where(jobs.c.id.in_(ids)).values(state=QUEUED, updated_at=now))
    conn.execute(insert(job_events), [event_row(i, JobPromoted(at=now)) for i in ids])
    return ids


_ANY_DUE = (
    select(jobs.c.id)
    .where(
        jobs.c.state == JobState.SCHEDULED.value,
        jobs.c.run_at <= bindparam("now", type_=jobs.c.run_at.type),
    )
    .limit(1)
)


def _lock_ids(conn: Connection, query: Select[tuple[int]]) -> list[int]:
    return list(conn.scalars(query.with_for_update(skip_locked=True)))


def _claimable(queues: Sequence[str] | None, now: datetime, routes: list[str]) -> Select[Any]:
    query = select(jobs).where(
        jobs.c.state == QUEUED,
        or_(jobs.c.run_at.is_(None), jobs.c.run_at <= now),
        jobs.c.route.in_(routes),  # the routes of every subset of the worker's tags
    )
    if queues is not None:
        query = query.where(jobs.c.queue.in_(list(queues)))
    paused = select(queue_state.c.name).where(queue_state.c.paused == true())
    query = query.where(jobs.c.queue.not_in(paused))  # a paused queue starts nothing new
    return query.order_by(jobs.c.priority.desc(), jobs.c.id.asc())


def _ready_once(query: Select[Any], with_queues: bool) -> Select[Any]:
    """``query`` narrowed to the jobs a claim may take, whatever the limits, with bound
    parameters (``now``, ``routes``, ``queues``)."""
    query = query.where(
        jobs.c.state == QUEUED,
        or_(jobs.c.run_at.is_(None), jobs.c.run_at <= bindparam("now", type_=jobs.c.run_at.type)),
        jobs.c.route.in_(bindparam("routes", expanding=True)),
    )
    if with_queues:
        query = query.where(jobs.c.queue.in_(bindparam("queues", expanding=True)))
    paused = select(queue_state.c.name).where(queue_state.c.paused == true())
    return query.where(jobs.c.queue.not_in(paused))


def _claimable_once(with_queues: bool) -> Select[Any]:
    """:func:`_claimable` with bound parameters (``now``, ``routes``, ``queues``, ``limit``)."""
    query = _ready_once(select(jobs), with_queues)
    query = query.order_by(jobs.c.priority.desc(), jobs.c.id.asc())
    return query.limit(bindparam("limit", type_=Integer)).with_for_update(skip_locked=True)


_CLAIMABLE = {False: _claimable_once(False), True: _claimable_once(True)}
# Whether a max_running limit holds the row's job back: one of its queue or its type.
_LIMITED = exists(
    select(limits.c.scope).where(
        or_(
            and_(limits.c.scope == Scope.QUEUE.value, limits.c.name == jobs.c.queue),
            and_(limits.c.scope == Scope.TYPE.value, limits.c.name == jobs.c.type),
        )
    )
).label("limited")
_CLAIMABLE_UNLESS_LIMITED = {
    with_queues: query.add_columns(_LIMITED) for with_queues, query in _CLAIMABLE.items()
}
_JOB_COLUMNS = tuple(jobs.c.keys())


def _job_columns(row: Row[Any]) -> dict[str, Any]:
    """The ``jobs`` columns of a claimable row (without the ``limited`` flag)."""
    mapping = row._mapping
    return {name: mapping[name] for name in _JOB_COLUMNS}


# A job a claim may take: whether a claim may find anything (see :func:`any_queued`).
_ANY_QUEUED = {
    with_queues: _ready_once(select(jobs.c.id), with_queues).limit(1)
    for with_queues in (False, True)
}

# The claim's own values, bound per job; the rest are the same for every claim.
_CLAIM_FIELDS = ("worker", "host", "started_at", "lease_expires_at", "updated_at", "wait_seconds")
_CLAIM = (
    update(jobs)
    .where(jobs.c.id == bindparam("job_id"), jobs.c.state == QUEUED)
    .values(
        {jobs.c[name]: bindparam(f"v_{name}", type_=jobs.c[name].type) for name in _CLAIM_FIELDS}
        | {jobs.c[name]: value for name, value in job_columns(FRESH_ATTEMPT).items()}
        | {jobs.c.attempt: jobs.c.attempt + 1}
    )
)
_INSERT_EVENT = insert(job_events)


def _claim_params(job: Job) -> dict[str, Any]:
    return {"job_id": job.id} | {f"v_{name}": getattr(job, name) for name in _CLAIM_FIELDS}
