"""The job manager: every user-facing operation on jobs, in domain terms.

The HTTP API and the CLI call this; it owns the storage calls and the state
machine. It never runs or signals a process: for a live job it records an
intent (``control``) and wakes the workers, which carry it out.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobyard.clock import utcnow
from jobyard.dependencies import (
    Dependencies,
    Readiness,
    condition_readiness,
    dependency_readiness,
    readiness,
    upstream_error,
)
from jobyard.errors import Conflict, Invalid, NotFound
from jobyard.events.records import JobStateChanged, JobTerminated, LogWritten, Record
from jobyard.jobtypes.catalog import Catalog
from jobyard.jobtypes.params import FieldError
from jobyard.jobtypes.spec import ArgsInvalid
from jobyard.models import Dependency, DependencyState, Job, JobQuery, JobUpdate, NewJob
from jobyard.outcomes import KILLED_BY_USER, Reason
from jobyard.states import (
    Control,
    Event,
    IllegalTransition,
    JobState,
    Outcome,
    initial_state,
    transition,
)
from jobyard.store.outage import deadlocked
from jobyard.store.protocol import AuditOf, Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    type: str
    args: dict[str, Any] = field(default_factory=dict)
    priority: int | None = None
    queue: str | None = None
    run_at: datetime | None = None
    hold: bool = False
    name: str | None = None
    idempotency_key: str | None = None
    depends_on: tuple[Dependency, ...] = ()


class JobManager:
    def __init__(
        self,
        store: Storage,
        catalog: Catalog,
        deps: Dependencies | None = None,
        *,
        wake: Callable[[], None] = lambda: None,
        on_terminal: Callable[[int], None] | None = None,
        on_restart: Callable[[Job], None] = lambda job: None,
        on_queued: Callable[[Sequence[Job]], None] | None = None,
        before_remove: Callable[[Job], None] = lambda job: None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.deps = deps or Dependencies(store, wake=wake, clock=clock)
        self._on_terminal = on_terminal or (lambda job_id: self.deps.settle([job_id]))
        self._on_restart = on_restart  # called with the new job (a workflow run reopens)
        self._wake = wake
        # new jobs were stored: hand them to a worker in this process (or wake it)
        self._on_queued = on_queued or (lambda jobs: wake())
        self._before_remove = before_remove  # its events go with it: what must they tell?
        self._clock = clock

    # -- submission --------------------------------------------------------
    def submit(self, submission: Submission, *, audit: AuditOf | None = None) -> tuple[Job, bool]:
        """Validate and store one job; ``False`` when an idempotency key matched."""
        return self.submit_many([submission], audit=audit, batch=False)[0]

    def submit_many(
        self,
        submissions: Sequence[Submission],
        *,
        audit: AuditOf | None = None,
        batch: bool = True,
    ) -> list[tuple[Job, bool]]:
        """Validate every submission, then store all of them in one transaction.

        A ``batch``'s refusals name their fields below ``jobs.<index>.``, as the request's
        own checks do (a single submit's, without).

        ``audit`` makes the audit log's entries for what was stored, kept in the
        same transaction (:meth:`~jobyard.store.protocol.JobStore.add_jobs`).
        """
        now = self._clock()
        upstream = self.store.jobs.job_states(
            {d.upstream for s in submissions for d in s.depends_on}
        )
        new_jobs, errors, args_only = [], [], True
        for index, submission in enumerate(submissions):
            prefix = f"jobs.{index}." if batch else ""
            problems = []
            try:
                new_jobs.append(self._new_job(submission, now, upstream))
            except Invalid as exc:
                problems += exc.errors
            # Its own queue only: a restart keeps its job's, a type's was checked with it.
            if submission.queue is not None:
                problems += self.queue_problems(submission.type, submission.queue)
            errors += [{**e, "field": prefix + e["field"]} for e in problems]
            args_only = args_only and all(e["field"].startswith("args") for e in problems)
        if errors:
            # an unknown type or dependency is not the arguments' fault
            detail = "the job arguments are invalid" if args_only else _INVALID
            raise Invalid(detail, errors)
        added = self.store.jobs.add_jobs(new_jobs, now, audit=audit)
        added = [
            (self._blocked_at_creation(job, new, upstream, now), True)
            if created and job.state is JobState.UPSTREAM_FAILED
            else (job, created)
            for (job, created), new in zip(added, new_jobs, strict=True)
        ]
        stored = [new for (_, created), new in zip(added, new_jobs, strict=True) if created]
        if self._settle_missed(stored, upstream):  # they may have moved on: as they are now
            fresh = {j.id: j for j in self.store.jobs.jobs_by_id([j.id for j, _ in added])}
            added = [(fresh.get(job.id, job), created) for job, created in added]
        self._on_queued([job for job, created in added if created])
        return added

    def _settle_missed(self, stored: Sequence[NewJob], upstream: Mapping[int, JobState]) -> bool:
        """Settle now the edges of ``stored`` whose upstream ended while they were stored.

        Their edges were stored unmet on the ``upstream`` states read before: an
        upstream that ended since looked for what waits for it before they were there,
        and would leave them to the scheduler's sweep (up to half a minute later). The
        states are read again, as no end under way leaves them, and the edges out of
        those that ended are settled (an edge is counted once, whoever settles it).
        True when there were some. The jobs are stored whatever happens here: a failure
        is logged and left to the sweep.
        """
        live = {
            d.upstream
            for new in stored
            for d in new.depends_on
            if not d.met and (state := upstream.get(d.upstream)) is not None and not state.terminal
        }
        if not live:
            return False
        try:
            ended = self.deps.settle_ended(live)
        except Exception:  # the jobs are stored: the scheduler's sweep settles them
            upstreams = {"upstreams": sorted(live)}
            log.exception("could not settle the dependencies of new jobs", extra=upstreams)
            return False
        return bool(ended)

    def queue_problems(self, type_name: str, queue: str) -> list[FieldError]:
        """A submission's own ``queue``: one the file declares, or its type's own (a type
        stored before the file declared queues goes on working when its queue is named)."""
        problems = self.catalog.queue_problems(queue)
        if problems and (job_type := self.catalog.get(type_name)) and job_type.queue == queue:
            return []
        return problems

    def _blocked_at_creation(
        self, job: Job, new: NewJob, upstream: dict[int, JobState], now: datetime
    ) -> Job:
        """A job submitted or restarted when a dependency had already ended the wrong way:
        it ended then, and says which, as a settle would have (reason ``upstream_failed``,
        the dependency in the error)."""
        failed = next(
            (
                d.upstream
                for d in new.depends_on
                if condition_readiness(d.condition, upstream.get(d.upstream))
                is Readiness.IMPOSSIBLE
            ),
            None,
        )
        if failed is None:
            return job
        error = upstream_error(failed, upstream.get(failed))
        values = {"reason": "upstream_failed", "error": error, "finished_at": now}
        blocked = frozenset({JobState.UPSTREAM_FAILED})
        return self.store.jobs.update_job(JobUpdate(job.id, blocked, values), now) or job

    def _new_job(
        self, submission: Submission, now: datetime, upstream: dict[int, JobState]
    ) -> NewJob:
        """The job ``submission`` makes; :class:`Invalid` names every bad field of it at
        once: its dependencies, its type, its arguments."""
        problems = _dependency_problems(submission.depends_on, upstream)
        job_type = self.catalog.get(submission.type)
        if job_type is None:
            message = f"unknown job type {submission.type!r}"
            problems.append({"field": "type", "message": message})
        else:
            try:
                args, spec = job_type.prepare(submission.args)
            except ArgsInvalid as exc:
                refused = exc.under_args("the job arguments are invalid")
                if not problems:
                    raise refused from exc
                problems += refused.errors
        if problems:
            raise Invalid(problems[0]["message"] if len(problems) == 1 else _INVALID, problems)
        assert job_type is not None  # told above
        waits = readiness(
            DependencyState(d.upstream, d.condition, upstream[d.upstream])
            for d in submission.depends_on
        )
        run_at = submission.run_at
        return NewJob(
            type=job_type.name,
            args=args,
            spec=spec,
            queue=submission.queue or job_type.queue,
            priority=job_type.priority if submission.priority is None else submission.priority,
            state=initial_state(
                hold=submission.hold,
                run_at_ahead=_ahead(run_at, now),
                deps_pending=waits is Readiness.PENDING,
                deps_failed=waits is Readiness.IMPOSSIBLE,
            ),
            run_at=run_at,
            name=submission.name,
            max_attempts=spec.retries.max + 1,
            idempotency_key=submission.idempotency_key,
            depends_on=tuple(
                dataclasses.replace(
                    d,
                    met=condition_readiness(d.condition, upstream[d.upstream]) is Readiness.MET,
                )
                for d in submission.depends_on
            ),
        )

    # -- reading -----------------------------------------------------------
    def get(self, job_id: int) -> Job:
        job = self.store.jobs.get_job(job_id)
        if job is None:
            raise NotFound(f"no job with id {job_id}")
        return job

    def find(self, query: JobQuery) -> tuple[list[Job], int]:
        return self.store.jobs.list_jobs(query)

    def dependencies(self, job_id: int) -> list[DependencyState]:
        return self.store.deps.dependencies([job_id])[job_id]

    def logs(self, job_id: int, after: int, limit: int) -> list[LogWritten]:
        return self.log_page(job_id, after, limit)[1]

    def log_page(self, job_id: int, after: int, limit: int) -> tuple[JobState, list[LogWritten]]:
        """The job's state, then its lines after ``after``: read in that order, a page that
        says the job ended holds every line it wrote (they are stored before its end)."""
        state = self.get(job_id).state
        return state, self.store.jobs.log_lines(job_id, after, limit)

    # -- control -----------------------------------------------------------
    def act(self, job_id: int, event: Event) -> Job:
        """Apply a user action (start, pause, resume, kill); 409 when the state forbids it.

        On a pending job the action takes effect at once; on a live job it is
        recorded as an intent for the owning worker, and the returned job
        carries it in ``control``.
        """
        for _ in range(5):  # the state may change under us (a worker claimed the job)
            job = self.get(job_id)
            now = self._clock()
            try:
                outcome, blocked_by = self._transition(job, event, now)
            except IllegalTransition as exc:
                raise Conflict(str(exc), state=job.state.value) from exc
            if outcome.control is not None:
                # A kill stands: a pause or resume written over it would lose it.
                unless = None if outcome.control is Control.KILL else Control.KILL
                if unless is not None and job.control is unless:
                    raise Conflict("the job is being killed", state=job.state.value)
                expect = frozenset({job.state})
                values = {"control": outcome.control}
                update = JobUpdate(job.id, expect, values, unless_control=unless)
            else:
                update = _immediate(job, outcome.state, now, blocked_by)
            try:
                updated = self.store.jobs.update_job(update, now)
            except Exception as exc:
                if not deadlocked(exc):
                    raise
                continue  # rolled back whole, to let a worker's write through: try again
            if updated is not None:
                if updated.state.terminal:
                    self._on_terminal(updated.id)
                self._wake()
                return updated
        raise Conflict("the job changed state too often; try again", state=job.state.value)

    def _transition(self, job: Job, event: Event, now: datetime) -> tuple[Outcome, str | None]:
        """The state table's answer, with a held job's dependencies taken into account;
        and when one of them means it can never run, the error it ends with."""
        ahead = _ahead(job.run_at, now)
        if job.state is not JobState.HELD or event not in (Event.START, Event.RESUME):
            return transition(job.state, event, run_at_ahead=ahead), None
        dependencies = self.store.deps.dependencies([job.id])[job.id]
        for d in dependencies:
            if dependency_readiness(d) is Readiness.IMPOSSIBLE:
                return transition(job.state, Event.BLOCK), upstream_error(d.upstream, d.state)
        pending = readiness(dependencies) is Readiness.PENDING
        return transition(job.state, event, run_at_ahead=ahead, deps_pending=pending), None

    def restart(
        self,
        job_id: int,
        args: dict[str, Any] | None = None,
        records: Sequence[Record] = (),
        *,
        hold: bool = False,
    ) -> Job:
        """A new job from a finished one's type and args (``args`` override some).

        A job is restarted once: 409 (naming its restart) for a second time, even a
        concurrent one. To run it yet again, restart the newest job of the chain.
        ``records`` are stored with the new job as it is created (a workflow run's
        reopening: before anything the new job can make the run tell). ``hold``: the
        new job is ``held`` until started (a run's nodes restarted together).
        """
        now = self._clock()
        old, new, upstream = self._restarted(job_id, args, now, hold=hold)
        stored = self.store.jobs.restart_job(old.id, new, now, records)
        if stored is None:
            raise NotFound(f"no job with id {job_id}")
        job, created = stored
        if not created:  # another restart got there first, or the job was reopened
            _check_restartable(job)
            raise AssertionError(f"job {job_id} could not be restarted")
        if job.state is JobState.UPSTREAM_FAILED:
            job = self._blocked_at_creation(job, new, upstream, now)
        if self._settle_missed([new], upstream):
            job = self.get(job.id)
        self.deps.reopen(old.id, job.id)
        self._on_restart(job)
        self._wake()
        return job

    def check_restart(self, job_id: int) -> None:
        """Refuse as :meth:`restart` would (404, 409, 422: its type is gone, or refuses
        its arguments now), storing nothing."""
        self._restarted(job_id, None, self._clock())

    def _restarted(
        self, job_id: int, args: dict[str, Any] | None, now: datetime, *, hold: bool = False
    ) -> tuple[Job, NewJob, dict[int, JobState]]:
        """The job to restart, its new job (checked as a submission is), and the states
        of what that waits for."""
        old = self.get(job_id)
        _check_restartable(old)
        carried = self._carried_dependencies(old)
        # A workflow node's ``at`` or ``cron`` time that has not come yet still holds it.
        held_until = old.run_at if old.node is not None and _ahead(old.run_at, now) else None
        submission = Submission(
            type=old.type,
            args={**old.args, **(args or {})},
            priority=old.priority,
            queue=old.queue,
            name=old.name,
            depends_on=carried,
            run_at=held_until,
            hold=hold,
        )
        upstream = self.store.jobs.job_states({d.upstream for d in carried})
        new = self._new_job(submission, now, upstream)
        if old.node is not None:  # a workflow node keeps its place and its node's limits
            kept = ("timeout", "retries", "kill_grace", "sla")
            limits = {k: getattr(old.spec, k) for k in kept}
            new = dataclasses.replace(
                new,
                spec=dataclasses.replace(new.spec, **limits),
                max_attempts=old.max_attempts,
                workflow_run=old.workflow_run,
                node=old.node,
            )
        return old, dataclasses.replace(new, restarted_from=old.id), upstream

    def _carried_dependencies(self, old: Job) -> tuple[Dependency, ...]:
        """The old job's dependencies, each on the newest run of its upstream job (once: the
        old job may have waited for a job and its restart, on the restart's condition)."""
        carried: dict[int, Dependency] = {}
        for dependency in self.store.deps.dependencies([old.id])[old.id]:
            if dependency.met and dependency.state is None:
                continue  # met, then its upstream removed: nothing is left to wait for
            upstream = dependency.upstream
            seen = {upstream}
            while (job := self.store.jobs.get_job(upstream)) and job.restarted_as not in (
                None,
                *seen,
            ):
                upstream = job.restarted_as or upstream
                seen.add(upstream)
            # A job and its restart: the condition given on the newest job itself wins.
            if upstream not in carried or dependency.upstream == upstream:
                carried[upstream] = Dependency(upstream, dependency.condition)
        return tuple(carried.values())

    def wake(self) -> None:
        """Tell the workers something is ready (embedded mode: at once)."""
        self._wake()

    def remove(self, job_id: int, *, force: bool = False) -> None:
        """Delete a finished job; ``force`` removes a live or pending one too.

        A node's job is never removed alone (409): the run would lose the node for good,
        as resume, retry-failed and restarts downstream of it all need its job.

        A forced removal is not a kill: the job is deleted in whatever state it is in
        (or has reached meanwhile), and its worker, woken, finds it gone and kills its
        processes, writing nothing more. Killed first, the job ended ``killed``, and
        that end met its dependents' ``failed`` and ``finished`` conditions before the
        removal was stored (a running one's, when its worker won the race): they ran.
        Removed, it meets nothing; they end ``upstream_failed``.
        """
        job = self.get(job_id)
        if job.workflow_run is not None:
            raise Conflict(_run_keeps(job), state=job.state.value, workflow_run=job.workflow_run)
        if not job.state.terminal and not force:
            raise Conflict(
                f"job {job_id} is {job.state.value}; kill it first or use force",
                state=job.state.value,
            )
        self._before_remove(job)
        if not self.store.jobs.delete_job(job_id, frozenset(JobState)):
            raise NotFound(f"no job with id {job_id}")
        self.deps.settle([job_id])  # whatever waited for it can never run now
        self._wake()


def _check_restartable(job: Job) -> None:
    """409 unless the job ended and was not restarted already."""
    if job.restarted_as is not None:
        raise Conflict(
            f"job {job.id} was already restarted as job {job.restarted_as}; "
            f"restart job {job.restarted_as} to run it again",
            state=job.state.value,
            restarted_as=job.restarted_as,
        )
    if not job.state.terminal:
        raise Conflict(
            f"cannot restart a job that is {job.state.value}; kill it first",
            state=job.state.value,
        )


def _run_keeps(job: Job) -> str:
    """Why a node's job is not removed, and what to do instead."""
    message = (
        f"job {job.id} is node {job.node!r} of workflow run {job.workflow_run}: a run's jobs "
        "are not removed one by one (retention removes them once the run is not running)"
    )
    return message if job.state.terminal else f"{message}; to end it, kill it or stop the run"


def _immediate(
    job: Job, state: JobState, now: datetime, blocked_by: str | None = None
) -> JobUpdate:
    """A pending job's change of state, taking effect at once: a kill, or with
    ``blocked_by`` (the error) an end for a dependency that can never be met."""
    values: dict[str, Any] = {"state": state}
    if not state.terminal:
        event = JobStateChanged(at=now, state=state, previous=job.state)
        return JobUpdate(job.id, frozenset({job.state}), values, event)
    if blocked_by is None:  # a kill: what an earlier attempt ended with is not why
        reason, error = Reason.KILLED, KILLED_BY_USER
        values["exit_code"] = None
    else:
        reason, error = "upstream_failed", blocked_by
    values |= {"finished_at": now, "reason": reason, "error": error}
    ended = JobTerminated(at=now, state=state, reason=reason, error=error, previous=job.state)
    return JobUpdate(job.id, frozenset({job.state}), values, ended)


_INVALID = "the submission is invalid"


def _dependency_problems(
    depends_on: Sequence[Dependency], upstream: dict[int, JobState]
) -> list[FieldError]:
    """A dependency on no job, or on one job twice (one edge a pair of jobs: one
    condition to meet)."""
    problems: list[FieldError] = []
    named: set[int] = set()
    for index, dependency in enumerate(depends_on):
        if dependency.upstream not in upstream:
            message = f"no job with id {dependency.upstream}"
            problems.append({"field": f"depends_on.{index}.job", "message": message})
        elif dependency.upstream in named:
            message = f"job {dependency.upstream} is named twice; give it once, with one 'on'"
            problems.append({"field": f"depends_on.{index}.job", "message": message})
        named.add(dependency.upstream)
    return problems


def _ahead(run_at: datetime | None, now: datetime) -> bool:
    return run_at is not None and run_at > now
