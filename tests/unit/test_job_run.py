"""A worker's attempt (claim → run → end) on the in-memory store, with a scripted runner.

:class:`Scripted` is a second implementation of the runner's contract
(:class:`~jobyard.runner.contract.Starter` and ``Execution``): no process, its
output and end are played by the test. Everything else is the worker's own code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy.exc import OperationalError

from jobyard.events.records import JobStateRecord
from jobyard.models import Job, JobSpec, JobUpdate, NewJob, RetryPolicy
from jobyard.runner.contract import Result, Sample, Sink
from jobyard.states import Control, JobState
from jobyard.store.memory import MemoryStore
from jobyard.worker.attempt import (
    BACKLOG_LINES,
    Abandon,
    HandBack,
    JobRun,
    RunSettings,
    run_token,
    token_parts,
)
from jobyard.worker.ends import EndWriter
from jobyard.worker.orphans import adoptable

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
OK = Result(0, None, None, 1.5, 2048, succeeded=True)
T = TypeVar("T")


class Scripted:
    """Starts executions that end when the test (or a signal the worker sends) says so."""

    def __init__(self, lines: tuple[str, ...] = ("hello", "world")) -> None:
        self.lines = lines
        self.calls: list[str] = []
        self.sink: Sink | None = None
        self._result: Result | None = None
        self.deferred = False  # controls take effect later, as on a cluster
        self.stubborn = False  # terminate and kill never end it (a controller that is down)

    # -- Starter
    def start(
        self,
        job_id: int,
        token: str,
        spec: JobSpec,
        sink: Sink,
        *,
        give_up: threading.Event | None = None,
    ) -> Scripted:
        self.sink = sink
        for line in self.lines:
            sink.log("stdout", line)
        sink.progress(0.5, "half")
        sink.metric("rows", 10.0)
        sink.output(sum(len(line) + 1 for line in self.lines))
        return self

    def adopt(self, job: Job, token: str, sink: Sink) -> Scripted:
        self.calls.append(f"adopt {job.id} as {token}")
        self.sink = sink
        return self

    # -- Execution
    pid = 4242

    def end(self, result: Result) -> None:
        """The job ends with ``result`` (before it starts: at once)."""
        self._result = result
        if self.sink is not None:
            self.sink.ended()

    def pause(self) -> bool:
        self.calls.append("pause")
        return not self.deferred

    def resume(self) -> bool:
        self.calls.append("resume")
        return not self.deferred

    def terminate(self) -> None:
        self.calls.append("terminate")
        if not self.stubborn:
            self.end(Result(None, 15, "terminated", None, None, succeeded=False))

    def kill(self) -> None:
        self.calls.append("kill")
        if not self.stubborn:
            self.end(Result(None, 9, "killed", None, None, succeeded=False))

    def sample(self) -> Sample:
        return Sample(rss=1024, cpu_seconds=0.25)

    def wait(self, timeout: float) -> Result | None:
        return self._result


class Yard:
    """A memory store with one claimed job, and the run of its attempt."""

    def __init__(
        self, spec: JobSpec | None = None, *, adopted: bool = False, kill_grace: float = 5.0
    ) -> None:
        self.store = MemoryStore()
        self.runner = Scripted()
        self.ended: list[int] = []
        self.done = threading.Event()
        spec = spec or JobSpec(argv=["echo"])
        new = NewJob("echo", {}, spec, "default", 0, JobState.QUEUED, max_attempts=2)
        self.store.jobs.add_jobs([new, new], NOW)  # two: the claim takes one, by id
        [self.job] = self.store.queue.claim_jobs(
            "w1", "host", None, 1, NOW, NOW + timedelta(1)
        ).jobs
        settings = RunSettings(
            worker="w1",
            kill_grace=kill_grace,
            clock=lambda: NOW,
            on_terminal=self.ended.append,
            on_done=self.done.set,
        )
        self.run = JobRun(self.job, self.store, self.runner, settings, adopted=adopted)

    def stored(self) -> Job:
        job = self.store.jobs.get_job(self.job.id)
        assert job is not None
        return job

    def forward_controls(self) -> None:
        """What the worker loop does each tick: hand the stored intents to the run."""
        for job_id, control in self.store.queue.live_controls("w1").items():
            assert job_id == self.job.id
            if control is not None:
                self.run.request(control)

    def finish(self) -> Job:
        self.run.join(timeout=5)
        assert not self.run.is_alive()
        assert self.done.is_set()
        return self.stored()


def soon(probe: Callable[[], T | None], what: str) -> T:
    """``probe``'s first truthy answer; the run's thread reacts within milliseconds."""
    deadline = threading.Event()
    timer = threading.Timer(5.0, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            if value := probe():
                return value
            deadline.wait(0.001)
    finally:
        timer.cancel()
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def yard() -> Yard:
    return Yard()


def _answer_lost(what: str) -> OperationalError:
    """What a write whose commit went through raises when the connection drops before
    its answer."""
    return OperationalError(what, {}, Exception("server closed the connection"))


def test_a_claimed_job_runs_and_its_success_is_recorded(yard: Yard) -> None:
    yard.runner.end(OK)
    yard.run.run()  # in this thread: the execution already ended
    job = yard.stored()
    assert (job.state, job.exit_code, job.reason, job.pid) == (JobState.SUCCEEDED, 0, None, None)
    assert (job.cpu_seconds, job.peak_memory, job.finished_at) == (1.5, 2048, NOW)
    assert (job.log_lines, job.output_bytes, job.progress) == (3, 12, 0.5)
    assert job.metrics == {"rows": 10.0}
    lines = [line.line for line in yard.store.jobs.log_lines(job.id)]
    assert lines == ["attempt 1 started on host by w1", "hello", "world"]
    kinds = [e.kind.value for e in yard.store.jobs.job_events(job.id)]
    assert kinds == ["state", "state", "log", "log", "log", "progress", "metric", "state"]
    assert yard.ended == [job.id]


def test_a_failure_with_attempts_left_is_scheduled_again() -> None:
    yard = Yard(JobSpec(argv=["false"], retries=RetryPolicy(max=1)))
    yard.runner.end(Result(3, None, "exit 3", None, None, succeeded=False))
    yard.run.run()
    job = yard.stored()
    assert (job.state, job.exit_code, job.reason, job.attempt) == (
        JobState.SCHEDULED, 3, "exit_code", 1,
    )  # fmt: skip
    assert job.run_at is not None
    assert job.run_at > NOW
    assert yard.ended == []  # not over: nothing downstream moves yet


def test_a_kill_intent_terminates_the_execution_and_ends_the_job_killed(yard: Yard) -> None:
    yard.run.start()
    soon(lambda: yard.stored().pid, "the pid to be stored")
    assert yard.store.jobs.update_job(_intent(yard.job, Control.KILL), NOW)  # as the manager does
    yard.forward_controls()
    job = yard.finish()
    assert yard.runner.calls == ["terminate"]
    assert (job.state, job.reason, job.control) == (JobState.KILLED, "killed", None)
    assert yard.ended == [job.id]


def test_pause_and_resume_are_applied_and_recorded(yard: Yard) -> None:
    yard.run.start()
    yard.run.request(Control.PAUSE)
    soon(lambda: yard.stored().state is JobState.PAUSED, "the job to pause")
    yard.run.request(Control.RESUME)
    soon(lambda: yard.stored().state is JobState.RUNNING, "the job to resume")
    yard.runner.end(OK)
    job = yard.finish()
    assert yard.runner.calls == ["pause", "resume"]
    assert job.state is JobState.SUCCEEDED
    events = yard.store.jobs.job_events(job.id)
    states = [e.record.state for e in events if isinstance(e.record, JobStateRecord)]
    assert states == [
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.PAUSED,
        JobState.RUNNING,
        JobState.SUCCEEDED,
    ]


def test_a_pause_whose_answer_was_lost_can_still_be_resumed(yard: Yard) -> None:
    """The pause's commit went through and its answer was lost: the try again found the
    job paused already. The run must know it is paused, or it drops every resume."""
    write = yard.store.jobs.update_job
    lost: list[JobState] = []

    def lose_the_pause_answer(update: JobUpdate, now: datetime) -> Job | None:
        written = write(update, now)
        if written is not None and written.state is JobState.PAUSED and not lost:
            lost.append(written.state)
            raise _answer_lost("pause")
        return written

    yard.store.jobs.update_job = lose_the_pause_answer  # type: ignore[method-assign]
    yard.run.start()
    yard.run.request(Control.PAUSE)
    soon(lambda: lost, "the pause's answer to be lost")
    yard.run.request(Control.RESUME)
    soon(lambda: "resume" in yard.runner.calls, "the resume to reach the process")
    soon(lambda: yard.stored().state is JobState.RUNNING, "the job to resume")
    yard.runner.end(OK)
    assert yard.finish().state is JobState.SUCCEEDED


def test_a_deferred_pause_marks_the_job_paused_only_once_it_took_effect(yard: Yard) -> None:
    yard.runner.deferred = True
    yard.run.start()
    yard.run.request(Control.PAUSE)
    soon(lambda: "pause" in yard.runner.calls, "the pause to be asked")
    assert yard.stored().state is JobState.RUNNING  # not yet: the cluster has not answered
    assert yard.runner.sink is not None
    yard.runner.sink.controlled("pause", None)
    soon(lambda: yard.stored().state is JobState.PAUSED, "the job to pause")
    yard.run.request(Control.RESUME)
    soon(lambda: "resume" in yard.runner.calls, "the resume to be asked")
    yard.runner.sink.controlled("resume", None)
    soon(lambda: yard.stored().state is JobState.RUNNING, "the job to resume")
    yard.runner.end(OK)
    assert yard.finish().state is JobState.SUCCEEDED


def test_a_refused_pause_leaves_the_job_running_and_says_why(yard: Yard) -> None:
    yard.runner.deferred = True
    yard.run.start()
    assert yard.store.jobs.update_job(_intent(yard.job, Control.PAUSE), NOW)
    yard.forward_controls()
    soon(lambda: "pause" in yard.runner.calls, "the pause to be asked")
    assert yard.runner.sink is not None
    yard.runner.sink.controlled("pause", "Slurm refused to pause job 7: Access denied")
    soon(lambda: yard.stored().control is None, "the intent to be dropped")
    assert yard.stored().state is JobState.RUNNING
    yard.runner.end(OK)
    job = yard.finish()
    lines = [line.line for line in yard.store.jobs.log_lines(job.id)]
    assert "Slurm refused to pause job 7: Access denied" in lines
    reasons = [
        (e.record.state, getattr(e.record, "reason", None))
        for e in yard.store.jobs.job_events(job.id)
        if isinstance(e.record, JobStateRecord)
    ]
    assert (JobState.RUNNING, "pause_refused") in reasons
    assert JobState.PAUSED not in [state for state, _ in reasons]


def test_a_run_that_ends_at_once_writes_its_start_output_and_end_in_one_write() -> None:
    yard = Yard()
    writes: list[str] = []
    jobs = yard.store.jobs
    for verb in ("append_output", "update_job", "end_jobs"):
        original = getattr(jobs, verb)

        def spy(*args: object, _verb: str = verb, _original: Callable[..., object] = original):
            writes.append(_verb)
            return _original(*args)

        setattr(jobs, verb, spy)
    yard.runner.end(OK)
    yard.run.run()
    job = yard.stored()
    assert writes == ["end_jobs"]
    lines = [line.line for line in yard.store.jobs.log_lines(job.id)]
    assert lines[0].startswith("attempt 1 started")
    assert lines[1:] == ["hello", "world"]
    assert (job.state, job.pid, job.log_lines) == (JobState.SUCCEEDED, None, 3)
    assert yard.store.monitor.samples(job.id, 1) == []  # it ended before its first sample
    assert (job.cpu_seconds, job.peak_memory) == (1.5, 2048)  # the runner's figures at the end


def test_a_run_whose_workers_loop_has_stopped_stores_its_end_itself(yard: Yard) -> None:
    """Ends go through the worker's loop; once it stopped (the worker stops while jobs
    still run), each run stores its own end and settles what waits for the job."""
    writer = EndWriter(yard.store, lambda: NOW)
    writer.close()
    settings = RunSettings(
        worker="w1",
        kill_grace=1.0,
        clock=lambda: NOW,
        on_terminal=yard.ended.append,
        end_writer=writer,
    )
    run = JobRun(yard.job, yard.store, yard.runner, settings)
    yard.runner.end(OK)
    run.run()
    assert yard.stored().state is JobState.SUCCEEDED
    assert yard.ended == [yard.job.id]


def test_a_run_that_lasts_is_sampled(yard: Yard) -> None:
    yard.run.start()
    soon(lambda: yard.store.monitor.samples(yard.job.id, 1), "a resource sample")
    yard.runner.end(OK)
    job = yard.finish()
    assert yard.store.monitor.samples(job.id, 1)[0]["rss"] == 1024
    assert job.pid is None  # stored while it ran, cleared at the end


def test_an_abandoned_run_is_killed_and_records_no_end(yard: Yard) -> None:
    yard.run.start()
    soon(lambda: yard.stored().pid, "the pid to be stored")
    yard.run.request(Abandon())
    job = yard.finish()
    assert yard.runner.calls == ["kill"]
    assert (job.state, job.finished_at) == (JobState.RUNNING, None)
    assert yard.ended == []


def test_a_handed_back_job_is_queued_again_with_its_attempt_returned(yard: Yard) -> None:
    yard.run.start()
    yard.run.request(HandBack("worker w1 stopped"))
    job = yard.finish()
    assert yard.runner.calls == ["terminate"]
    assert (job.state, job.attempt, job.worker) == (JobState.QUEUED, 0, None)
    [again] = yard.store.queue.claim_jobs("w2", "host", None, 1, NOW, NOW + timedelta(1)).jobs
    assert (again.id, again.attempt) == (job.id, 1)


def test_a_paused_job_handed_back_stays_paused_as_a_held_job(yard: Yard) -> None:
    """A user paused it: another worker must not run it until someone resumes it."""
    yard.run.start()
    yard.run.request(Control.PAUSE)
    soon(lambda: yard.stored().state is JobState.PAUSED, "the job to pause")
    yard.run.request(HandBack("worker w1 stopped"))
    job = yard.finish()
    assert (job.state, job.attempt, job.worker, job.paused_at) == (JobState.HELD, 0, None, None)
    claimed = yard.store.queue.claim_jobs("w2", "host", None, 2, NOW, NOW + timedelta(1)).jobs
    assert job.id not in [other.id for other in claimed]  # the yard's other job is taken


def test_a_hand_back_follows_a_pause_or_resume_asked_since_the_worker_read_the_job(
    yard: Yard,
) -> None:
    """The state a hand-back leaves is chosen from the locked row: a pause asked and not
    carried out yet is held (it was queued, and the next worker ran it unpaused); a
    paused job whose resume was asked is queued (it was held, the resume lost)."""
    yard.run.start()
    soon(lambda: yard.stored().pid, "the pid to be stored")
    assert yard.store.jobs.update_job(_intent(yard.stored(), Control.PAUSE), NOW)
    yard.run.request(HandBack("worker w1 stopped"))  # before the pause reaches the run
    job = yard.finish()
    assert (job.state, job.control) == (JobState.HELD, None)

    other = Yard()
    other.run.start()
    other.run.request(Control.PAUSE)
    soon(lambda: other.stored().state is JobState.PAUSED, "the job to pause")
    assert other.store.jobs.update_job(_intent(other.stored(), Control.RESUME), NOW)
    other.run.request(HandBack("worker w1 stopped"))
    resumed = other.finish()
    assert (resumed.state, resumed.control, resumed.paused_at) == (JobState.QUEUED, None, None)


def test_a_hand_back_tried_again_leaves_alone_the_job_another_worker_claimed(yard: Yard) -> None:
    """The requeue committed but its answer was lost; another worker claimed the job
    before the try again. That try must not take the job back from it."""
    claimed: list[Job] = []

    def answer_lost_once(write: Callable[..., T]) -> Callable[..., T]:
        def written(*args: object, **kwargs: object) -> T:
            result = write(*args, **kwargs)
            if not claimed and yard.stored().state is JobState.QUEUED:
                claim = yard.store.queue.claim_jobs("w2", "host", None, 1, NOW, NOW + timedelta(1))
                claimed.extend(claim.jobs)
                raise _answer_lost("requeue")
            return result

        return written

    yard.store.jobs.update_job = answer_lost_once(yard.store.jobs.update_job)  # type: ignore[method-assign]
    yard.store.jobs.end_jobs = answer_lost_once(yard.store.jobs.end_jobs)  # type: ignore[method-assign]
    yard.run.start()
    yard.run.request(HandBack("worker w1 stopped"))
    job = yard.finish()
    assert [taken.id for taken in claimed] == [job.id]
    assert (job.state, job.worker, job.attempt) == (JobState.RUNNING, "w2", 1)


def test_a_hand_back_whose_end_is_never_confirmed_still_requeues_the_job() -> None:
    yard = Yard(kill_grace=0.2)
    yard.runner.stubborn = True
    yard.run.start()
    yard.run.request(HandBack("worker w1 stopped"))
    job = yard.finish()
    assert yard.runner.calls == ["terminate", "kill"]
    assert (job.state, job.attempt) == (JobState.QUEUED, 0)
    lines = [line.line for line in yard.store.jobs.log_lines(job.id)]
    assert "its end was not confirmed within 0.4 s" in lines


def _intent(job: Job, control: Control) -> JobUpdate:
    return JobUpdate(job.id, frozenset({job.state}), {"control": control})


def test_an_adopted_run_follows_the_execution_and_ends_with_its_reason() -> None:
    yard = Yard(JobSpec(argv=["sleep"], retries=RetryPolicy(max=1)), adopted=True)
    lost = Result(None, None, "Slurm ended it NODE_FAIL", None, None, False, reason="executor_lost")
    yard.runner.end(lost)
    yard.run.run()
    job = yard.stored()
    assert yard.runner.calls == [f"adopt {job.id} as w1:{job.id}:1"]
    assert (job.state, job.reason, job.error) == (
        JobState.SCHEDULED, "executor_lost", "Slurm ended it NODE_FAIL",
    )  # fmt: skip
    lines = [line.line for line in yard.store.jobs.log_lines(job.id)]
    assert lines == ["attempt 1 adopted by w1"]


def test_only_a_recorded_slurm_attempt_is_adoptable(yard: Yard) -> None:
    job = yard.job
    details = {"executor": "slurm", "slurm_job_id": "12", "token": run_token(job)}
    assert adoptable(job.evolve(details=details))
    assert not adoptable(job.evolve(details=details | {"token": "w0:1:0"}))  # an older attempt
    assert not adoptable(job)  # a local job: its processes died with the worker


def test_a_run_token_reads_back_into_its_worker_job_id_and_attempt() -> None:
    assert token_parts("host:7:42:3") == ("host:7", 42, 3)  # a name may hold colons
    for other in ("", "42:3", "w:x:3", "w:42:", "jobyard:install:42:3x"):
        assert token_parts(other) is None


def test_a_progress_message_alone_keeps_how_far_the_job_is(yard: Yard) -> None:
    # ctx.progress(message="…") after ctx.progress(0.5, "half"): the 0.5 was lost.
    start = yard.runner.start

    def start_then_say(job_id: int, token: str, spec: JobSpec, sink: Sink, **kw: Any) -> Scripted:
        execution = start(job_id, token, spec, sink, **kw)
        sink.progress(None, "still going")
        return execution

    yard.runner.start = start_then_say  # type: ignore[method-assign]
    yard.runner.end(OK)
    yard.run.run()
    job = yard.stored()
    assert (job.progress, job.progress_message) == (0.5, "still going")
    reported = [e.record for e in yard.store.jobs.job_events(job.id) if e.kind.value == "progress"]
    assert [(r.fraction, r.message) for r in reported] == [(0.5, "half"), (0.5, "still going")]


def test_output_waits_for_the_store_once_the_backlog_is_full(yard: Yard) -> None:
    """A job printing faster than its lines are stored grew the worker's memory without
    end: past :data:`BACKLOG_LINES` waiting, its output's reader waits for a flush."""
    append = yard.store.jobs.append_output
    down = threading.Event()
    down.set()

    def append_unless_down(*args: Any, **kwargs: Any) -> bool:
        if down.is_set():
            raise _answer_lost("append")
        return append(*args, **kwargs)

    yard.store.jobs.append_output = append_unless_down  # type: ignore[method-assign]
    yard.run.start()
    sink = soon(lambda: yard.runner.sink, "the run to start")
    said: list[int] = []

    def print_lines() -> None:
        for n in range(BACKLOG_LINES + 100):
            sink.log("stdout", f"line {n}")
            said.append(n)

    printer = threading.Thread(target=print_lines, daemon=True)
    printer.start()
    # The run's own 3 lines, then the printer's, up to the backlog's size: held there.
    soon(lambda: len(said) >= BACKLOG_LINES - 3, "the backlog to fill")
    printer.join(timeout=0.5)
    assert printer.is_alive()
    assert len(said) == BACKLOG_LINES - 3
    down.clear()  # the store is back: the backlog is written, the printer goes on
    printer.join(timeout=5)
    assert not printer.is_alive()
    yard.runner.end(OK)
    job = yard.finish()
    assert job.state is JobState.SUCCEEDED
    lines = [line.line for line in yard.store.jobs.log_lines(job.id, limit=BACKLOG_LINES + 200)]
    assert lines[3:] == [f"line {n}" for n in range(BACKLOG_LINES + 100)]


def test_output_read_by_a_shared_reader_never_waits_for_room() -> None:
    """A Slurm job's output is read from files by one thread for all of the executor's
    jobs: held for one job's backlog, it held every other job's output and end."""
    yard = Yard(JobSpec(argv=["echo"], executor={"kind": "slurm"}))
    yard.store.jobs.append_output = _refused  # type: ignore[method-assign]
    yard.run.start()
    sink = soon(lambda: yard.runner.sink, "the run to start")
    reader = threading.Thread(
        target=lambda: [sink.log("stdout", "x") for _ in range(BACKLOG_LINES + 100)], daemon=True
    )
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive()
    yard.run.request(Abandon())
    yard.run.join(timeout=5)


def _refused(*args: Any, **kwargs: Any) -> bool:
    raise _answer_lost("append")  # the database is away
