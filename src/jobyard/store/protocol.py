"""The store contract, in domain verbs, grouped by concern.

Two implementations hold to it, checked by one contract suite: the SQL store
(:class:`~jobyard.store.store.Store`, on SQLite, PostgreSQL and MariaDB) and the
in-memory store (:class:`~jobyard.store.memory.MemoryStore`, for fast tests).
Callers reach the parts through a :class:`Storage`: ``store.jobs.update_job(…)``,
``store.queue.claim_jobs(…)``. Every method is atomic, takes times as
arguments (``now``) and returns frozen domain objects (:mod:`jobyard.models`);
events go in and come out as records (:mod:`jobyard.events.records`).
Schedules, the event feed and monitoring beyond samples are SQL-only parts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from jobyard.access.records import AuditEntry
from jobyard.events.records import JobEvent, LogWritten, Record
from jobyard.limits import Key, Limit
from jobyard.models import (
    Condition,
    DependencyState,
    Ended,
    Job,
    JobEnd,
    JobQuery,
    JobUpdate,
    NewJob,
    NodeJob,
    RunState,
    WorkerInfo,
    WorkflowRun,
)
from jobyard.states import Control, JobState
from jobyard.store.histograms import JobHistograms

#: Given what a submission stored (``(job, created)`` per entry), the audit log's
#: entries that say so, written in the same transaction.
AuditOf = Callable[[Sequence[tuple[Job, bool]]], Sequence[AuditEntry]]


class JobStore(Protocol):
    """Jobs, their events and their log lines."""

    def add_jobs(
        self, new: Sequence[NewJob], now: datetime, *, audit: AuditOf | None = None
    ) -> list[tuple[Job, bool]]:
        """Store a batch at once; ``(job, created)`` per entry, in order.

        An entry whose ``idempotency_key`` is taken (by a stored job or an earlier
        entry) stores nothing and yields that job with False. A created job gets a
        :class:`~jobyard.events.records.JobCreated` event and its dependency edges.
        ``audit`` makes the audit entries of the submission, stored with the jobs:
        both are kept, or neither.
        """
        ...

    def get_job(self, job_id: int) -> Job | None: ...

    def jobs_by_id(self, job_ids: Collection[int]) -> list[Job]:
        """The jobs with these ids, in that order (missing ones left out)."""
        ...

    def job_states(self, job_ids: Collection[int], *, settled: bool = False) -> dict[int, JobState]:
        """The state of each of these jobs that exists; ``settled``: as no end under way
        leaves them (the read waits for such an end's commit)."""
        ...

    def list_jobs(self, query: JobQuery) -> tuple[list[Job], int]:
        """A page of the matching jobs and their total; ``ValueError`` for a bad query."""
        ...

    def update_job(self, update: JobUpdate, now: datetime) -> Job | None:
        """Compare-and-set: apply while the state is in ``update.expect``, else None.

        Sets ``updated_at`` to ``now`` and appends ``update.event`` when applied;
        ``ValueError`` for a field that is not writable.
        """
        ...

    def delete_job(self, job_id: int, expect: frozenset[JobState]) -> bool:
        """Delete the job, its events, samples and own edges if its state is in ``expect``."""
        ...

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
        """Append log lines, then events, and set ``values`` (no ``updated_at``), atomically;
        nothing, and False, when the job is gone or (if given) not run by ``worker`` at
        ``attempt`` any more."""
        ...

    def end_jobs(self, ends: Sequence[JobEnd], now: datetime) -> list[Ended | None]:
        """Write several attempts' ends in one transaction: per end, its output and then its
        update, if the job is still run by that worker at that attempt, its state is
        still expected and (with ``lapsed_by``) its lease ended by then (else nothing of
        it); an end's ``note`` goes after the job's last line as the locked row counts
        them (:func:`noted`); per end, in order, the ended job (and whether unmet
        dependency edges go out of it) or None."""
        ...

    def restart_job(
        self, old_id: int, new: NewJob, now: datetime, records: Sequence[Record] = ()
    ) -> tuple[Job, bool] | None:
        """Store ``new`` as the restart of the terminal job ``old_id``, once: ``(new, True)``;
        ``(old, False)`` when it is not terminal or was restarted already; None if unknown.
        ``records`` are stored with the new job after its ``job_created``, in its creation's
        transaction (before anything its run can tell)."""
        ...

    def trim_log(self, job_id: int, marker_seq: int, upto_seq: int, marker: str) -> int:
        """Drop log lines with ``marker_seq`` < seq ≤ ``upto_seq``, reword the marker line."""
        ...

    def job_events(self, job_id: int, after_id: int = 0, limit: int = 1000) -> list[JobEvent]:
        """Events of every kind with id > ``after_id``, by id (ids grow across all jobs)."""
        ...

    def log_lines(self, job_id: int, after_seq: int = 0, limit: int = 1000) -> list[LogWritten]:
        """Log lines with seq > ``after_seq``, by seq."""
        ...


class Claimed(NamedTuple):
    """What :meth:`QueueStore.claim_jobs` took, and whether more may wait."""

    jobs: list[Job]  # now running, in claim order
    # it took ``limit`` jobs and due queued jobs were left: claim again. SQLite (without
    # max_running limits) counts only jobs this claim could have taken; the others any
    # due job of its queues, whatever its tags (a claim that finds none costs a read)
    more: bool


class ClaimOrder(NamedTuple):
    """What a worker claims with: :meth:`QueueStore.claim_jobs`'s arguments but the clock."""

    worker: str
    host: str
    queues: Sequence[str] | None
    limit: int
    lease_until: datetime
    tags: Collection[str] = ()


class QueueStore(Protocol):
    """Claims, leases and control intents of live jobs; paused queues."""

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
        """Up to ``limit`` due ``queued`` jobs, by priority then id, become ``running``.

        Only jobs of ``queues`` (None: all) that are not paused, whose tags are
        among ``tags`` and that fit the ``max_running`` limits; each gets a new
        attempt, a lease until ``lease_until`` and a
        :class:`~jobyard.events.records.JobClaimed` event. No job goes to two claimers.
        ``idle_poll`` says that nothing announced work (a periodic look): the store
        may then look without locking first, since the answer is nearly always none.

        ``more`` is False when the claim took fewer than ``limit`` (it took all it
        could), and when it took ``limit`` with no due queued job of ``queues``
        left, as read in the claim's own transaction. It may say True when the
        jobs left are out of reach (locked by another claimer, paused, of other
        tags, held back by limits): that costs the caller one empty claim, where
        a wrong False would leave a job waiting beside a free slot.
        """
        ...

    def end_and_claim(
        self,
        ends: Sequence[JobEnd],
        now: datetime,
        order: ClaimOrder,
        *,
        settle: Met | None = None,
        released_only: bool = False,
    ) -> tuple[list[Ended | None], Claimed | None]:
        """:meth:`JobStore.end_jobs`, then :meth:`claim_jobs` for the slots they freed,
        in one transaction: a worker whose runs end takes their next jobs in the commit
        that ends them (both, or neither).

        With ``settle`` (as :meth:`DependencyStore.settle_edges` takes it), the edges
        out of the jobs that ended for good are settled in it too, before the claim,
        which may then take the dependents they released. Such an end comes back
        ``awaited`` only if an edge out of it can never be met: blocking its dependent
        is the caller's (a settle of it finds that edge, and only that one, again).
        With ``released_only`` (nothing announced work), the claim is made only if the
        settling released a job (and then takes what it finds, by priority, as any
        claim does): else no claim is made (None).
        """
        ...

    def renew_leases(
        self,
        worker: str,
        now: datetime,
        lease_until: datetime,
        job_ids: Collection[int] | None = None,
    ) -> list[int]:
        """Extend the worker's live jobs' leases (of those among ``job_ids``, when given),
        record its heartbeat; their ids."""
        ...

    def live_controls(self, worker: str) -> dict[int, Control | None]:
        """Each live job of the worker, with the intent recorded on it (None: none). A
        run of the worker whose job is not among them was removed, or went elsewhere."""
        ...

    def promote_due(self, now: datetime) -> list[int]:
        """Queue the ``scheduled`` jobs whose ``run_at`` ≤ ``now`` (a
        :class:`~jobyard.events.records.JobPromoted` event each); their ids."""
        ...

    def expired_leases(self, now: datetime) -> list[Job]: ...

    def live_jobs_on_host(self, host: str) -> list[Job]: ...

    def set_queue_paused(self, name: str, paused: bool, now: datetime) -> None: ...

    def start_paused(self, names: Collection[str], now: datetime) -> set[str]:
        """Pause each queue of ``names`` that has no state yet (it was never paused or
        resumed): a configuration's ``paused: true`` is where a new queue starts, and
        leaves one a user paused or resumed as it is. The names paused now."""
        ...

    def paused_queues(self) -> set[str]: ...

    def queue_counts(self) -> dict[str, dict[str, int]]: ...


class Settled(NamedTuple):
    """What :meth:`DependencyStore.settle_edges` did."""

    released: list[int]  # the jobs that left ``waiting``, by id
    impossible: list[tuple[int, int, JobState | None]]  # (job, upstream, its state), sorted
    # The workflow runs of the jobs whose edges it counted (each still waits, or was
    # released: the run has a live node when the settle commits), but those where it
    # met an edge that can never be met: blocking its job may end the run.
    live_runs: frozenset[int] = frozenset()


Met = Mapping[JobState | None, Collection[Condition]]
"""The conditions an upstream job ended in each state meets (``None``: it was removed)."""


def to_settle(ended: Sequence[Ended | None]) -> list[int]:
    """The jobs among ``ended`` that ended for good with edges out of them to settle."""
    return [e.job.id for e in ended if e is not None and e.awaited and e.job.state.terminal]


def after_settle(
    ended: Sequence[Ended | None], settled_ids: Collection[int], settled: Settled
) -> list[Ended | None]:
    """``ended`` once the edges out of ``settled_ids`` were settled: those are awaited no
    longer, but for the ones with an edge that can never be met (its dependent is yet
    to be blocked)."""
    done = set(settled_ids) - {upstream for _, upstream, _ in settled.impossible}
    return [Ended(e.job) if e is not None and e.job.id in done else e for e in ended]


def with_live_runs(
    ended: Sequence[Ended | None], settled: Settled | None, claimed: Claimed | None
) -> list[Ended | None]:
    """``ended``, those whose workflow run kept a live node in their commit marked so
    (``run_live``): a node the settle counted an edge of, or one the claim took."""
    runs = set(settled.live_runs) if settled is not None else set()
    if claimed is not None:
        runs.update(job.workflow_run for job in claimed.jobs if job.workflow_run is not None)
    return [
        dataclasses.replace(e, run_live=True) if e is not None and e.job.workflow_run in runs else e
        for e in ended
    ]


class DependencyStore(Protocol):
    """The edges between jobs, counted off once each as upstream jobs end."""

    def dependencies(self, job_ids: Collection[int]) -> dict[int, list[DependencyState]]: ...

    def dependents(
        self, upstream_ids: Collection[int], states: Collection[JobState]
    ) -> list[Job]: ...

    def settle_edges(
        self,
        upstream_ids: Collection[int],
        met: Met,
        now: datetime,
    ) -> Settled:
        """Count off, in one transaction, the unmet edges out of the ended ``upstream_ids``.

        ``met`` says which conditions an upstream job ended in each state meets
        (``None``: it was removed); upstream jobs in another state (live again)
        are left alone. Each met edge to a waiting or held job is counted once;
        the ``waiting`` jobs left with no dependency are released: each goes where
        the state table sends it (``queued``, or ``scheduled`` while its ``run_at``
        is after ``now``) with a :class:`~jobyard.events.records.JobStateChanged`
        event. The other edges to waiting or held jobs can never be met: they come
        back as ``impossible``, uncounted.
        """
        ...

    def release_ready(self, now: datetime) -> list[int]:
        """Release, as :meth:`settle_edges` does, every ``waiting`` job with no dependency
        left (a settle was interrupted); their ids."""
        ...

    def block_jobs(self, errors: Mapping[int, str], now: datetime) -> list[int]:
        """The jobs among ``errors`` that are ``waiting`` end ``upstream_failed`` with
        their error and a :class:`~jobyard.events.records.JobTerminated` event; their ids."""
        ...

    def unsettled_upstreams(self) -> list[int]: ...

    def repoint_dependencies(self, old: int, new: int) -> list[int]:
        """Jobs not run yet that waited for ``old`` wait for ``new`` instead; their ids."""
        ...


class WorkflowStore(Protocol):
    """Workflow runs, stored with their node jobs."""

    def add_workflow_run(
        self,
        workflow: str,
        args: dict[str, Any],
        trigger: str,
        nodes: Sequence[NewJob],
        edges: Sequence[tuple[int, int]],
        now: datetime,
    ) -> tuple[WorkflowRun, list[Job]]: ...

    def get_run(self, run_id: int) -> WorkflowRun | None: ...

    def list_runs(
        self, page: int, per_page: int, workflow: str | None = None, state: str | None = None
    ) -> tuple[list[WorkflowRun], int]: ...

    def live_run(self, run_id: int) -> tuple[WorkflowRun, bool] | None:
        """The run, and whether a node's newest job is not terminal yet, in one read (an
        index lookup, not a scan); None when there is no such run."""
        ...

    def node_jobs(self, run_id: int) -> dict[str, NodeJob]:
        """Each node's newest job, in a few columns: what a run that ended is judged by,
        and what its view shows (a run of 10,000 nodes is read without its jobs' rows)."""
        ...

    def run_jobs(self, run_id: int) -> list[Job]: ...

    def update_run(
        self, run_id: int, expect: Collection[RunState], values: dict[str, Any], now: datetime
    ) -> WorkflowRun | None: ...


class WorkerStore(Protocol):
    """Registered workers: heartbeats, drain requests, what each runs."""

    def register_worker(self, info: WorkerInfo) -> None: ...

    def worker_heartbeat(self, name: str, now: datetime) -> None: ...

    def unregister_worker(self, name: str) -> None: ...

    def get_worker(self, name: str) -> WorkerInfo | None: ...

    def list_workers(self) -> list[WorkerInfo]: ...

    def worker_jobs(self, names: Collection[str] | None = None) -> dict[str, list[int]]: ...

    def request_drain(self, name: str, timeout: float | None, now: datetime) -> bool: ...

    def set_worker_state(self, name: str, state: str) -> None: ...


class JobTypeStore(Protocol):
    """Job types created through the API."""

    def put_job_type(self, name: str, definition: dict[str, Any], now: datetime) -> bool: ...

    def add_job_type(self, name: str, definition: dict[str, Any], now: datetime) -> bool: ...

    def get_job_type(self, name: str) -> dict[str, Any] | None: ...

    def list_job_types(self) -> dict[str, dict[str, Any]]: ...

    def delete_job_type(self, name: str) -> bool: ...


class LimitStore(Protocol):
    """Cluster-wide ``max_running`` limits, which the claim enforces."""

    def read(self) -> dict[Key, int]: ...

    def sync_limits(self, wanted: Sequence[Limit], owned: Collection[Key], now: datetime) -> bool:
        """Make the configuration's limits the stored ones; True when something changed."""
        ...

    def set_limit(self, key: Key, max_running: int | None, now: datetime) -> None: ...


class SampleStore(Protocol):
    """What a running job writes and reads of its monitoring: samples and SLA history."""

    def add_samples(
        self,
        job_id: int,
        attempt: int,
        rows: Sequence[tuple[datetime, float, int]],
        usage: tuple[float, int] | None = None,
    ) -> bool:
        """Store samples and show ``usage`` (CPU seconds, peak RSS) on the live job; False
        (nothing stored) when ``attempt`` is not the job's current one."""
        ...

    def thin_samples(self, job_id: int, attempt: int) -> int: ...

    def job_histograms(self) -> JobHistograms:
        """The ``/metrics`` histograms of the jobs that ended: those stored, plus what
        removed ones (by :meth:`JobStore.delete_job` or retention) counted."""
        ...

    def forget_old_samples(self, job_id: int, attempt: int) -> None: ...

    def recent_runtimes(self, job_type: str, limit: int) -> list[float]: ...

    def breached_budgets(self, job_id: int) -> frozenset[str]: ...


class Pruned(NamedTuple):
    """What one retention batch did."""

    rows: int = 0  # rows of the verb's own table removed (log lines for prune_logs, …)
    owned: int = 0  # rows removed with them (a job's events, samples, edges), or jobs marked
    more: bool = False  # another batch may find more


class RetentionStore(Protocol):
    """Removal of old rows of finished work, one small batch per call.

    Each verb removes at most ``limit`` rows of its table in one short
    transaction; only rows of terminal jobs finished before ``before`` (for
    ``jobs``, ``logs``, ``events``, ``samples``), notifications no one will send
    any more, audit entries, workflow runs that ended before ``before`` and have
    no job left, and schedule fires (never a schedule's newest). A job others
    still wait for, a node of a running workflow run, and events a durable
    reader (a cursor) has not read yet are kept. A job left without log lines (other events) gets
    ``logs_pruned_at`` (``events_pruned_at``) = ``now``.
    """

    def prune_jobs(self, before: datetime, limit: int, now: datetime) -> Pruned: ...

    def prune_logs(self, before: datetime, limit: int, now: datetime) -> Pruned: ...

    def prune_events(self, before: datetime, limit: int, now: datetime) -> Pruned: ...

    def prune_samples(self, before: datetime, limit: int, now: datetime) -> Pruned: ...

    def prune_notifications(self, before: datetime, limit: int, now: datetime) -> Pruned: ...

    def prune_audit(self, before: datetime, limit: int, now: datetime) -> Pruned: ...

    def prune_runs(self, before: datetime, limit: int, now: datetime) -> Pruned: ...

    def prune_fires(self, before: datetime, limit: int, now: datetime) -> Pruned: ...

    def prunable(self, kind: str, before: datetime) -> int:
        """How many rows of ``kind`` (``jobs``, ``logs``, …) would go now, each kind alone."""
        ...

    def pruned_through(self) -> int:
        """The newest event id retention removed (0: none): a stream resuming before it
        may have missed events."""
        ...


class Storage(Protocol):
    """A whole store as the manager, dependencies, workflow runs, catalogue and worker use it."""

    @property
    def jobs(self) -> JobStore: ...
    @property
    def queue(self) -> QueueStore: ...
    @property
    def deps(self) -> DependencyStore: ...
    @property
    def runs(self) -> WorkflowStore: ...
    @property
    def workers(self) -> WorkerStore: ...
    @property
    def job_types(self) -> JobTypeStore: ...
    @property
    def limits(self) -> LimitStore: ...
    @property
    def monitor(self) -> SampleStore: ...
    @property
    def retention(self) -> RetentionStore: ...
    @property
    def dialect(self) -> str: ...


def lapsed(job: Job, end: JobEnd) -> bool:
    """Whether ``job``'s lease ended by the end's ``lapsed_by`` (True when it asks not)."""
    if end.lapsed_by is None:
        return True
    return job.lease_expires_at is not None and job.lease_expires_at <= end.lapsed_by


def noted(job: Job, note: str, now: datetime) -> LogWritten:
    """The end's system line, after the last line the locked ``job`` counts."""
    return LogWritten(at=now, seq=job.log_lines + 1, stream="system", line=note)
