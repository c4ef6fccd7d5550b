"""How a run ends: pure decisions from what happened to what the job becomes.

A worker reports that a process ended (:func:`finished`), or the scheduler finds
that a worker vanished (:func:`lost`). Both return the :class:`JobUpdate` to
apply — the new state, the fields to record, and the event record — so the
retry, restart and kill rules live in one place and are tested without I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobyard.events.records import JobHandedBack, JobRescheduled, JobTerminated
from jobyard.models import Job, JobEnd, JobUpdate, RestartPolicy
from jobyard.states import LIVE, Control, Event, JobState, transition

KILLED_BY_USER = "killed by a user"  # the error of a job a user killed, wherever it was


class Reason:
    """Why a job ended the way it did (the ``reason`` column)."""

    KILLED = "killed"  # asked by a user
    TIMEOUT = "timeout"
    EXIT = "exit_code"
    SIGNAL = "signal"
    EXCEPTION = "exception"
    WORKER_LOST = "worker_lost"
    SPAWN = "spawn_failed"
    SLA = "sla_breach"  # killed for breaking a budget (sla: on_breach: kill)
    WORKER_ERROR = "worker_error"  # the worker could not carry it on (a bug, a refused write)


@dataclass(frozen=True)
class RunEnd:
    """What a worker saw when a run ended."""

    succeeded: bool
    exit_code: int | None = None
    error: str | None = None
    reason: str | None = None  # Reason.*: set when the worker ended it (kill, timeout)
    cpu_seconds: float | None = None
    peak_memory: int | None = None


def finished(job: Job, end: RunEnd, now: datetime) -> JobUpdate:
    """The update for a run that ended; retries and monitor restarts included."""
    common: dict[str, Any] = {
        "exit_code": end.exit_code,
        "error": end.error,
        "cpu_seconds": end.cpu_seconds,
        "peak_memory": end.peak_memory,
        "control": None,
        "pid": None,
        "lease_expires_at": None,
    }
    common.update(_close_pause(job, now))
    common["runtime_seconds"] = _attempt_runtime(job, now, common)
    if end.reason == Reason.KILLED:
        return _terminal(job, Event.KILLED, now, common, reason=Reason.KILLED)
    if end.succeeded and job.spec.restart is not RestartPolicy.ALWAYS:
        return _terminal(job, Event.SUCCEED, now, common, reason=None)
    reason = end.reason or (None if end.succeeded else Reason.EXIT)
    again = _again(job, now, succeeded=end.succeeded)
    if again is not None:
        return _rescheduled(job, now, common, reason=reason, **again)
    return _terminal(job, Event.FAIL, now, common, reason=reason)


def lost(job: Job, now: datetime) -> JobUpdate:
    """The update for a live job whose worker died (lease expired or process gone).

    The attempt counts as one (the job may have killed its worker). A job that a user
    paused, or asked to (:attr:`Job.pauses`), and that would run again is held instead
    of rescheduled: no worker runs it until someone resumes it, as after a drain.
    """
    common: dict[str, Any] = {"control": None, "pid": None, "lease_expires_at": None}
    common.update(_close_pause(job, now))
    common["runtime_seconds"] = _attempt_runtime(job, now, common)
    common["error"] = f"worker {job.worker} was lost"
    if job.control is Control.KILL:
        return _terminal(job, Event.KILLED, now, common, reason=Reason.KILLED)
    again = _again(job, now, succeeded=False)
    if again is not None:
        by = Event.HOLD if job.pauses else Event.RETRY
        return _rescheduled(job, now, common, reason=Reason.WORKER_LOST, by=by, **again)
    return _terminal(job, Event.LOST, now, common, reason=Reason.WORKER_LOST)


def lost_end(job: Job, now: datetime, why: str, *, lapsed: bool = False) -> JobEnd:
    """:func:`lost`, with a system line in the job's log that says why its attempt was
    lost (its worker cannot say it). Written only while that worker holds that
    attempt, and with ``lapsed`` only if its lease, as stored when written, had ended.

    Whether the job is paused, and whether a kill is asked, is taken from the locked
    row, not from ``job`` (read before): a pause, a resume or a kill asked since counts.
    """
    running = job.evolve(state=JobState.RUNNING, control=None)
    update = lost(running, now)
    return JobEnd(
        update=update,
        worker=job.worker or "",  # a live job has its worker
        attempt=job.attempt,
        note=f"attempt {job.attempt} lost: {why}",
        lapsed_by=now if lapsed else None,
        if_killed=lost(job.evolve(state=JobState.RUNNING, control=Control.KILL), now),
        if_paused=lost(job.evolve(state=JobState.PAUSED, control=None), now),
    )


def requeued(job: Job, now: datetime, why: str) -> JobUpdate:
    """The update for a live job that its worker hands back unfinished (drain).

    The attempt is given back too: the worker chose to stop, the job did not fail,
    so its retries stay whole (a lost worker, which may be the job's doing, costs one).
    """
    outcome = transition(job.state, Event.REQUEUE)
    values: dict[str, Any] = {
        "state": outcome.state,
        "control": None,
        "pid": None,
        "worker": None,
        "lease_expires_at": None,
        "attempt": max(job.attempt - 1, 0),
        **_close_pause(job, now),
    }
    event = JobHandedBack(
        at=now, state=outcome.state, reason=why, attempt=job.attempt, worker=job.worker
    )
    return JobUpdate(job.id, frozenset(LIVE), values, event)


# What an end that runs the job again sets that a killed end does not.
_AGAIN_ONLY = frozenset({"state", "run_at", "restart_count", "reason", "worker", "attempt"})


def killed_instead(job: Job, update: JobUpdate, now: datetime) -> JobUpdate | None:
    """What to write instead of ``update`` when a user's kill is pending as it is
    written: an end that would run the job again (a retry, a monitor's restart, a
    hand-back) ends it killed, as asked (None: ``update`` ends it anyway)."""
    state = update.values.get("state")
    if state is None or JobState(state).terminal:
        return None
    common = {key: value for key, value in update.values.items() if key not in _AGAIN_ONLY}
    common["error"] = KILLED_BY_USER
    return _terminal(job, Event.KILLED, now, common, reason=Reason.KILLED)


def requeued_end(job: Job, now: datetime, why: str, *, noted: bool = False) -> JobEnd:
    """:func:`requeued`, written only while the job's worker holds that attempt: a try
    again after a commit that went unseen leaves alone the job another worker claimed
    since. ``noted``: with a system line in the job's log (a hand-back by other than the
    job's own run, which writes its line itself)."""
    update = requeued(job.evolve(state=JobState.RUNNING), now, why)
    return JobEnd(
        update=update,
        worker=job.worker or "",  # a live job has its worker
        attempt=job.attempt,
        note=f"handed back: {why}" if noted else None,
        if_killed=killed_instead(job, update, now),
        # A user paused it, or asked to, maybe since the worker read it: held, so that no
        # worker runs it until someone resumes it (as the row says, not the worker's copy).
        if_paused=requeued(job.evolve(state=JobState.PAUSED), now, why),
    )


def _again(job: Job, now: datetime, *, succeeded: bool) -> dict[str, Any] | None:
    """When the job runs again: a monitor restart or a retry, else None."""
    spec = job.spec
    restart = spec.restart is RestartPolicy.ALWAYS or (
        spec.restart is RestartPolicy.ON_FAILURE and not succeeded
    )
    if restart:
        delay = spec.restart_backoff.delay(job.restart_count + 1)
        return {"run_at": now + timedelta(seconds=delay), "restart_count": job.restart_count + 1}
    if job.attempt < job.max_attempts:
        delay = spec.retries.delay(job.attempt)
        return {"run_at": now + timedelta(seconds=delay), "restart_count": job.restart_count}
    return None


def _rescheduled(
    job: Job,
    now: datetime,
    common: dict[str, Any],
    *,
    reason: str | None,
    run_at: datetime,
    restart_count: int,
    by: Event = Event.RETRY,
) -> JobUpdate:
    outcome = transition(job.state, by)
    values = {
        **common,
        "state": outcome.state,
        "run_at": run_at,
        "restart_count": restart_count,
        "reason": reason,
        "worker": None,
    }
    event = JobRescheduled(
        at=now,
        state=outcome.state,
        reason=reason,
        attempt=job.attempt,
        run_at=run_at,
        exit_code=common.get("exit_code"),
        restart_count=restart_count,
    )
    return JobUpdate(job.id, frozenset(LIVE), values, event)


def _terminal(
    job: Job, event: Event, now: datetime, common: dict[str, Any], *, reason: str | None
) -> JobUpdate:
    outcome = transition(job.state, event)
    values = {**common, "state": outcome.state, "finished_at": now, "reason": reason}
    ended = job.evolve(
        finished_at=now, paused_seconds=values.get("paused_seconds", job.paused_seconds)
    )
    data = JobTerminated(
        at=now,
        state=outcome.state,
        reason=reason,
        attempt=job.attempt,
        exit_code=common.get("exit_code"),
        error=common.get("error"),
        runtime_seconds=ended.runtime_at(now),
    )
    return JobUpdate(job.id, frozenset(LIVE), values, data)


def _attempt_runtime(job: Job, now: datetime, common: dict[str, Any]) -> float | None:
    """Seconds the attempt ran until ``now``, its pauses apart."""
    paused = common.get("paused_seconds", job.paused_seconds)
    return job.evolve(finished_at=now, paused_at=None, paused_seconds=paused).runtime_at(now)


def _close_pause(job: Job, now: datetime) -> dict[str, Any]:
    """Fold an open pause into ``paused_seconds`` so runtime excludes it."""
    if job.paused_at is None:
        return {}
    paused = job.paused_seconds + max((now - job.paused_at).total_seconds(), 0.0)
    return {"paused_at": None, "paused_seconds": paused}
