"""How runs end: retries, monitor restarts, kills and lost workers, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobyard.events.records import JobHandedBack
from jobyard.models import Backoff, Job, JobSpec, RestartPolicy, RetryPolicy
from jobyard.outcomes import Reason, RunEnd, finished, lost, requeued
from jobyard.states import Control, JobState

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_job(**changes: object) -> Job:
    job = Job(
        id=7,
        type="t",
        name=None,
        args={},
        spec=JobSpec(argv=["true"]),
        queue="default",
        priority=0,
        state=JobState.RUNNING,
        control=None,
        created_at=T0,
        updated_at=T0,
        started_at=T0,
        attempt=1,
        max_attempts=1,
        worker="w1",
    )
    return job.evolve(**changes)


def test_success_ends_succeeded_with_the_measures() -> None:
    end = RunEnd(succeeded=True, exit_code=0, cpu_seconds=1.5, peak_memory=1024)
    update = finished(make_job(), end, T0 + timedelta(seconds=3))
    assert update.values["state"] is JobState.SUCCEEDED
    assert update.values["finished_at"] == T0 + timedelta(seconds=3)
    assert update.values["cpu_seconds"] == 1.5
    assert update.values["reason"] is None
    assert update.event is not None
    assert update.event.marshal() == {
        "state": "succeeded",
        "attempt": 1,
        "exit_code": 0,
        "runtime_seconds": 3.0,
    }
    assert update.expect == {JobState.RUNNING, JobState.PAUSED}


def test_failure_with_attempts_left_is_rescheduled_after_the_backoff() -> None:
    spec = JobSpec(
        argv=["false"], retries=RetryPolicy(max=2, backoff=Backoff.EXPONENTIAL, initial=10)
    )
    job = make_job(spec=spec, max_attempts=3, attempt=2)
    update = finished(job, RunEnd(succeeded=False, exit_code=3), T0)
    assert update.values["state"] is JobState.SCHEDULED
    assert update.values["run_at"] == T0 + timedelta(seconds=20)
    assert update.values["reason"] == Reason.EXIT
    assert "finished_at" not in update.values


def test_the_last_attempt_fails() -> None:
    job = make_job(max_attempts=3, attempt=3)
    update = finished(job, RunEnd(succeeded=False, exit_code=1, error="exit code 1"), T0)
    assert update.values["state"] is JobState.FAILED
    assert update.values["error"] == "exit code 1"


def test_a_user_kill_is_never_retried() -> None:
    job = make_job(max_attempts=5, spec=JobSpec(argv=["x"], restart=RestartPolicy.ALWAYS))
    update = finished(job, RunEnd(succeeded=False, reason=Reason.KILLED), T0)
    assert update.values["state"] is JobState.KILLED
    assert update.values["reason"] == Reason.KILLED


def test_a_timeout_is_a_failure_that_names_its_reason() -> None:
    update = finished(make_job(), RunEnd(succeeded=False, reason=Reason.TIMEOUT), T0)
    assert update.values["state"] is JobState.FAILED
    assert update.values["reason"] == Reason.TIMEOUT


def test_monitors_restart_with_a_growing_count() -> None:
    spec = JobSpec(argv=["m"], restart=RestartPolicy.ON_FAILURE)
    job = make_job(spec=spec, restart_count=2)
    update = finished(job, RunEnd(succeeded=False, exit_code=1), T0)
    assert update.values["state"] is JobState.SCHEDULED
    assert update.values["restart_count"] == 3
    assert update.values["run_at"] == T0 + timedelta(seconds=spec.restart_backoff.delay(3))
    # on-failure: a clean exit ends it; always: it comes back
    assert finished(job, RunEnd(succeeded=True), T0).values["state"] is JobState.SUCCEEDED
    always = make_job(spec=JobSpec(argv=["m"], restart=RestartPolicy.ALWAYS))
    assert finished(always, RunEnd(succeeded=True), T0).values["state"] is JobState.SCHEDULED


def test_paused_time_is_folded_in_when_a_paused_job_ends() -> None:
    job = make_job(state=JobState.PAUSED, paused_at=T0 + timedelta(seconds=5), paused_seconds=1)
    update = finished(job, RunEnd(succeeded=False, reason=Reason.KILLED), T0 + timedelta(seconds=9))
    assert update.values["paused_seconds"] == 5.0
    assert update.values["paused_at"] is None


def test_a_lost_job_is_retried_or_fails_with_worker_lost() -> None:
    retried = lost(make_job(max_attempts=2), T0)
    assert retried.values["state"] is JobState.SCHEDULED
    assert retried.values["reason"] == Reason.WORKER_LOST
    failed = lost(make_job(), T0)
    assert failed.values["state"] is JobState.FAILED
    assert failed.values["reason"] == Reason.WORKER_LOST
    assert "w1" in failed.values["error"]
    killed = lost(make_job(control=Control.KILL, max_attempts=3), T0)
    assert killed.values["state"] is JobState.KILLED


def test_a_job_lost_while_a_user_pauses_it_is_held_not_rescheduled() -> None:
    paused = make_job(state=JobState.PAUSED, paused_at=T0, max_attempts=2)
    update = lost(paused, T0 + timedelta(seconds=4))
    assert update.values["state"] is JobState.HELD
    assert (update.values["reason"], update.values["worker"]) == (Reason.WORKER_LOST, None)
    assert (update.values["paused_at"], update.values["paused_seconds"]) == (None, 4.0)
    assert update.event is not None
    assert update.event.state is JobState.HELD
    # A pause asked, not carried out yet, counts; a resume asked runs it again.
    asked = make_job(control=Control.PAUSE, max_attempts=2)
    assert lost(asked, T0).values["state"] is JobState.HELD
    resumed = make_job(state=JobState.PAUSED, control=Control.RESUME, max_attempts=2)
    assert lost(resumed, T0).values["state"] is JobState.SCHEDULED
    # With no attempt left it fails as any lost job does.
    assert lost(make_job(state=JobState.PAUSED), T0).values["state"] is JobState.FAILED


def test_a_job_handed_back_is_queued_again() -> None:
    job = make_job()
    update = requeued(job, T0, "worker stopped")
    assert update.values["state"] is JobState.QUEUED
    assert update.values["attempt"] == job.attempt - 1  # a drain costs the job no attempt
    assert update.values["worker"] is None
    # The job's history says which worker handed it back.
    assert update.event == JobHandedBack(
        at=T0, state=JobState.QUEUED, reason="worker stopped", attempt=job.attempt, worker="w1"
    )


def test_a_paused_job_handed_back_is_held_until_someone_resumes_it() -> None:
    job = make_job(state=JobState.PAUSED, paused_at=T0, paused_seconds=2)
    update = requeued(job, T0 + timedelta(seconds=3), "worker stopped")
    assert update.values["state"] is JobState.HELD
    assert (update.values["paused_at"], update.values["paused_seconds"]) == (None, 5.0)
    assert update.event is not None
    assert update.event.state is JobState.HELD


def test_runtime_excludes_paused_time() -> None:
    later = T0 + timedelta(seconds=60)
    job = make_job(
        finished_at=T0 + timedelta(seconds=10), paused_seconds=4.0, state=JobState.SUCCEEDED
    )
    assert job.runtime_at(later) == 6.0
    live = make_job(
        state=JobState.PAUSED,
        paused_at=T0 + timedelta(seconds=2),
        updated_at=T0 + timedelta(seconds=5),
    )
    assert live.runtime_at(later) == 2.0
    # The time paused counts up while the job is paused, as its runtime does while it runs.
    assert live.paused_at_time(later) == 58.0
    assert job.paused_at_time(later) == 4.0


def test_a_live_job_runs_until_now_and_one_waiting_to_retry_until_its_attempt_ended() -> None:
    running = make_job(paused_seconds=1.5)  # nothing written since the claim at T0
    assert running.runtime_at(T0 + timedelta(seconds=90)) == 88.5
    assert make_job(started_at=None).runtime_at(T0) is None
    retrying = make_job(state=JobState.QUEUED, updated_at=T0 + timedelta(seconds=3))
    assert retrying.runtime_at(T0 + timedelta(seconds=90)) == 3.0
