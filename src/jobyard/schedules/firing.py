"""Firing schedules: the scheduler leader turns due fire times into jobs and workflow runs.

Each fire time is claimed in ``schedule_fires`` (unique per schedule and time), so
even two schedulers that both think they lead fire a time once: a workflow run is
stored in the claim's transaction, and a job before its claim, under the fire key
as its idempotency key (a claim that fails is made again at the next pass, which
finds the same job by its key). Nothing is claimed that did not make its job or run.
The last claimed time is where the next pass starts, which is how times missed
while the server was down are found (and handled by the misfire policy).

The last run's job whose lease lapsed is not judged on its state: its worker is lost,
and its recovery ends it or queues it again. Such a fire waits (unclaimed) for the
scheduler's recovery, which the pass asks for (:meth:`Firing.run_once`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from jobyard.clock import utcnow
from jobyard.errors import Invalid, JobyardError
from jobyard.manager import JobManager, Submission
from jobyard.models import Condition, Dependency, Job, RunState
from jobyard.schedules.book import Entry, ScheduleBook
from jobyard.schedules.due import ScheduleSpec, due, fire_key, overlap_action
from jobyard.states import LIVE
from jobyard.store import outage
from jobyard.store.fires import Fire
from jobyard.workflows.runs import Runs

log = logging.getLogger(__name__)


class Firing:
    def __init__(
        self,
        manager: JobManager,
        runs: Runs,
        book: ScheduleBook,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.manager = manager
        self.store = book.store
        self.runs = runs
        self.book = book
        self.started_at = clock()
        self._told: dict[str, datetime] = {}  # a schedule that cannot fire: the time told of
        self._failing: dict[str, str] = {}  # a schedule whose pass failed: the error told of

    def run_once(self, now: datetime) -> bool:
        """Fire what is due at ``now``; whether a fire waits for the recovery of a job
        whose lease lapsed (the scheduler recovers lost jobs before its next pass fires)."""
        waits = False
        for entry in self.book.all().values():
            name = entry.spec.name
            try:
                waits |= not self._fire_due(entry, now)
            except Exception as exc:
                if outage.unavailable(exc) or outage.deadlocked(exc):
                    raise  # the pass is tried again, the outage told once (Scheduler)
                # Refused (a job type removed since), a value the database refuses, a
                # bug: the other schedules fire all the same. Nothing was claimed: this
                # one is tried again at each pass, and told of once.
                if self._failing.get(name) != repr(exc):
                    self._failing[name] = repr(exc)
                    if isinstance(exc, JobyardError):
                        log.error("schedule could not fire", extra={"schedule": name, "error": exc})
                    else:
                        log.exception("schedule could not fire", extra={"schedule": name})
            else:
                self._failing.pop(name, None)
        return waits

    def _fire_due(self, entry: Entry, now: datetime) -> bool:
        """Fire ``entry``'s due times; False when they wait for a lapsed lease's recovery."""
        spec = entry.spec
        last = self.store.schedules.last_fire(spec.name)
        # Times before the last fire, a creation or a resume were not missed.
        floors = [t for t in (last.fire_time if last else None, entry.counts_from) if t]
        decision = due(spec, max(floors, default=None), now, created_at=self.started_at)
        if (decision.run or decision.missed) and (problem := self._cannot_fire(spec)):
            # Its job type or workflow is gone from the file, or takes its arguments no
            # more: nothing is claimed (a skipped time neither), so its last fire stays
            # the last one that made something, and the time is fired (by its misfire
            # policy) once the target is back. Told once per due time.
            if decision.last_fire is not None and self._told.get(spec.name) != decision.last_fire:
                self._told[spec.name] = decision.last_fire
                log.error("schedule cannot fire", extra={"schedule": spec.name, "error": problem})
            return True
        # The run to overlap is the last one started: skipped fires in between start none.
        started = self.store.schedules.last_started_fire(spec.name) if decision.run else None
        previous = self._previous(started, now)
        if previous == "lapsed":
            # A worker lost at a crash (of this process, or of another node's): skipped
            # for it, a daily schedule would lose its day. Fired once it is recovered.
            return False
        if decision.missed:
            log.warning(
                "schedule missed fire times",
                extra={"schedule": spec.name, "missed": decision.missed},
            )
            if not decision.run and decision.last_fire is not None:
                # Skipped (``misfire: skip``): claimed as handled, as a fire an overlap
                # skips is, so that the next pass starts after it (it found the same
                # missed times at every pass, twice a second, until the next fire).
                self.store.schedules.claim_fire(spec.name, decision.last_fire, now)
        for when in decision.run:
            action = overlap_action(spec, previous == "live")
            if action != "skip":
                self._fire(spec, when, now, started if action == "queue" else None)
            elif self.store.schedules.claim_fire(spec.name, when, now):
                log.info(
                    "schedule skipped: previous run still going", extra={"schedule": spec.name}
                )
        return True

    def _fire(self, spec: ScheduleSpec, when: datetime, now: datetime, after: Fire | None) -> None:
        """Make the job or run of a fire, and claim the fire with it. A fire claimed before
        what it makes was stored (the database gone for a moment, the process killed in
        between) would be lost: the next pass starts after the last claimed time."""
        kind, target = spec.target
        if kind == "workflow":
            # The run is stored with the claim, in its transaction.
            nodes, edges = self.runs.graph(target, dict(spec.args), now)
            stored = self.store.schedules.add_fired_run(
                (spec.name, when), target, dict(spec.args), nodes, edges, now
            )
            if stored is not None:  # else fired already (by another scheduler)
                self.runs.started(*stored, now)
            return
        # The job is stored first, under the fire's key, then claimed with it: a claim
        # that fails is tried again at the next pass, which finds the same job by its key.
        waits = (Dependency(after.job_id, Condition.FINISHED),) if after and after.job_id else ()
        job, _ = self.manager.submit(
            Submission(
                type=target,
                args=dict(spec.args),
                name=spec.name,
                idempotency_key=fire_key(spec, when),
                depends_on=waits,
            )
        )
        if not self.store.schedules.claim_fire(spec.name, when, now, job.id):
            # Another scheduler claimed the time first: with this job, found by its key,
            # or as a skip, which it decided on its own view of the last run.
            log.info(
                "schedule fire claimed by another scheduler",
                extra={"schedule": spec.name, "job": job.id},
            )

    def _cannot_fire(self, spec: ScheduleSpec) -> str | None:
        """Why ``spec`` cannot fire now (its target is unknown, or refuses its arguments),
        or None."""
        try:
            self.book.check_target(spec)
        except Invalid as exc:
            return str(exc)
        return None

    def _previous(self, started: Fire | None, now: datetime) -> Previous:
        """Whether the job or run of the last fire that started one still goes (``live``),
        ended (``gone``), or has a job whose lease lapsed before ``now`` (``lapsed``): its
        worker is lost, and only its recovery says whether it ends or runs again.

        A lease not lapsed counts as live: its worker may well be alive (on another
        node). A worker of this process that died at a crash has its jobs recovered as
        the process starts again, before its scheduler starts (:class:`jobyard.node.Node`).
        """
        if started is None:
            return "gone"
        if started.job_id is not None:
            job = self.store.jobs.get_job(started.job_id)
            if job is None or job.state.terminal:
                return "gone"
            jobs = [job]
        elif started.run_id is not None:
            run = self.store.runs.get_run(started.run_id)
            if run is None or run.state is not RunState.RUNNING:
                return "gone"
            jobs = self.store.runs.run_jobs(started.run_id)  # read only at a fire time
        else:
            return "gone"
        return "lapsed" if any(_lapsed(job, now) for job in jobs) else "live"


Previous = Literal["live", "gone", "lapsed"]


def _lapsed(job: Job, now: datetime) -> bool:
    """Whether ``job`` runs on a lease that ended before ``now`` (its worker is lost)."""
    expires = job.lease_expires_at
    return job.state in LIVE and expires is not None and expires < now
