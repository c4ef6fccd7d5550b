"""One claimed job on a worker: drive its process, batch its output, report its end.

A :class:`JobRun` is the :class:`~jobyard.runner.local.Sink` of its execution: the
runner's reader threads hand it log lines, progress and metrics, which it
buffers and writes in batches (never a transaction per line). Its own thread
polls the process, applies control intents, enforces the timeout and kill
grace, samples resources, and finally records the outcome. A write that finds
the database out of reach (it is restarting) is kept and retried — at the end
of the run until it is stored — so no line and no end is lost. Any other error
of a write is a bug or a refused value: the attempt fails, loudly. A write the
store refuses because the job was removed (or given to another attempt) ends
the run at once: its processes are killed and nothing more of it is written.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from jobyard import outcomes, tracing
from jobyard.events.records import (
    JobStateChanged,
    LogWritten,
    MetricReported,
    ProgressReported,
    Record,
    SlaBreached,
)
from jobyard.models import Ended, Job, JobEnd, JobUpdate
from jobyard.outcomes import Reason, RunEnd
from jobyard.runner.contract import Execution, Executor, Result, Sample
from jobyard.runner.protocol import storable, storable_json
from jobyard.runner.threads import Threads
from jobyard.states import LIVE, Control, JobState
from jobyard.store import outage
from jobyard.store.protocol import Storage
from jobyard.text import shortened
from jobyard.worker import sla
from jobyard.worker.books import LogCap, SampleBook
from jobyard.worker.ends import EndWriter, Stalled, stored_end
from jobyard.worker.sla import SlaWatch

log = logging.getLogger(__name__)
T = TypeVar("T")

FLUSH_INTERVAL = 0.1  # seconds between batched writes of output
FLUSH_LINES = 1000  # or sooner, when this many lines are waiting
# Output waiting to be stored past which the job's readers wait for the store: the job
# then waits on its pipe (as on a slow terminal). Without it a job printing faster than
# its lines are stored grew the worker's memory without end (gigabytes in seconds), and
# every control (a kill) waited behind one flush of the whole backlog.
BACKLOG_LINES = 5 * FLUSH_LINES
BACKLOG_CHARS = 8_000_000  # characters of text (up to 4 bytes each in UTF-8)
# A progress message is a status line: longer ones are cut (MariaDB's TEXT column holds
# 65,535 bytes, and a line of undecodable bytes is three times as long once stored).
PROGRESS_MESSAGE_MAX = 1000
SAMPLE_INTERVAL = 1.0
POLL_INTERVAL = 0.1  # the longest a run waits to look at limits; requests wake it at once


@dataclass(frozen=True)
class RunSettings:
    worker: str
    kill_grace: float
    clock: Callable[[], datetime]
    # bytes of log lines kept per attempt: the oldest half, the newest half
    log_cap: int = 50_000_000
    # called when a run ended the job for good: start or block what depends on it
    on_terminal: Callable[[int], None] = lambda job_id: None
    # called when a run is over, whatever the outcome: a slot is free
    on_done: Callable[[], None] = lambda: None
    # writes the end of the run; None: the run writes it itself
    end_writer: EndWriter | None = None


@dataclass(frozen=True)
class Abandon:
    """The job is no longer ours (its lease was lost): kill the processes, report nothing."""


@dataclass(frozen=True)
class HandBack:
    """The worker stops: kill the processes and requeue the job, saying why."""

    why: str


@dataclass(frozen=True)
class Controlled:
    """The executor applied a deferred pause or resume, or refused it (``error``)."""

    control: Control
    error: str | None


Request = Control | Abandon | HandBack | Controlled
"""What the worker loop asks of a run (a user's control intent, or one of its own),
or what the executor reports of a control it applied later."""


def run_token(job: Job) -> str:
    """Marks every process of one attempt (environment ``JOBYARD_JOB_TOKEN``)."""
    return f"{job.worker}:{job.id}:{job.attempt}"


def token_parts(token: str) -> tuple[str, int, int] | None:
    """The worker, job id and attempt of a :func:`run_token` (a worker's name may hold
    colons); None for text of another shape."""
    worker, _, rest = token.rpartition(":")
    worker, _, job_id = worker.rpartition(":")
    if not (worker and job_id.isdigit() and rest.isdigit()):
        return None
    return worker, int(job_id), int(rest)


#: The threads runs are driven on: one ends its run and waits for the next, so a job
#: does not pay for a thread's start (and its context switch) on a busy worker.
RUN_THREADS = Threads("job-idle")


class JobRun:
    """One attempt of one job, driven on a thread of :data:`RUN_THREADS` from :meth:`start`.

    It answers ``is_alive`` and ``join`` as a thread of its own would.
    """

    def __init__(
        self,
        job: Job,
        store: Storage,
        runner: Executor,
        settings: RunSettings,
        *,
        adopted: bool = False,  # the job runs already (on Slurm): follow it, start nothing
    ) -> None:
        self.name = f"job-{job.id}"
        self._started = False
        self._finished = threading.Event()
        self.job = job
        self.adopted = adopted
        # Monotonic time its lease was last set (claimed or renewed), set by the worker;
        # None: no lease of the worker's to watch (an adopted run).
        self.leased: float | None = None
        self.over = False  # set (before the thread ends) once the run is done with its slot
        self._store = store
        self._runner = runner
        self._settings = settings
        self._requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._wake = threading.Event()  # a request came, or the process ended
        self._stopping = threading.Event()  # killed, handed back or abandoned: a start gives up
        self._seen: set[Control] = set()
        self._lock = threading.RLock()  # reentrant: see together()
        self._room = threading.Condition(self._lock)  # the backlog was taken to be stored
        # Readers no longer wait for room: the run is failing, or its output is read from
        # files by a thread all of an executor's jobs share (Slurm's), which must not
        # wait for one job: its job does not wait on a pipe anyway.
        self._unheld = job.spec.executor is not None
        self._run_thread: int | None = None  # its own lines never wait for room
        self._logs: list[LogWritten] = []
        # Lines waiting to be stored: in ``_logs``, and taken by a flush not yet stored
        # (they count until they are: a flush that fails puts them back).
        self._in_flight = 0
        self._waiting_chars = 0  # of both
        self._events: list[Record] = []
        self._values: dict[str, Any] = {}
        self._seq = job.log_lines
        self._output_bytes = job.output_bytes
        self._metrics = dict(job.metrics)
        self._reason: str | None = None
        self._error: str | None = None
        self._kill_at: float | None = None
        self._abandoned = False
        self._fence_lock = threading.Lock()
        self._fenced = False
        self._handed_back = False
        self._lost = False  # the store refused a write: the job is gone or not ours
        self._peak_rss = 0
        self._cap = LogCap(settings.log_cap)
        self._watch: SlaWatch | None = None
        self._samples = SampleBook(job.id, job.attempt)
        self._execution: Execution | None = None
        self._doubtful = False  # a batch failed with the connection: was it committed?
        self._unstored = 0  # lines a failed write dropped (the attempt then fails)
        self._end: RunEnd | None = None  # how it ended, once written
        self._outage = outage.OutageLog(
            log, "database unavailable; will retry", "database reachable again", {"job": job.id}
        )

    # -- asked from the worker loop ----------------------------------------
    def request(self, request: Request) -> None:
        if isinstance(request, Control):
            if request in self._seen:  # the loop repeats an intent until it is applied
                return
            self._seen.add(request)
        if isinstance(request, Abandon | HandBack) or request is Control.KILL:
            self._stopping.set()
        self._requests.put(request)
        self._wake.set()

    @property
    def fenced(self) -> bool:
        """Whether :meth:`fence` stopped it."""
        return self._fenced

    def fence(self) -> bool:
        """Its lease lapsed unrenewed: kill its processes now; the run reports nothing
        more, unless it was already storing its end.

        Called from any thread: the run's own may be held by a write that stalls with
        the database, so the processes are killed here, not when it looks at its
        requests. False when there was nothing to fence (ended, or fenced already).
        """
        with self._fence_lock:  # a run handing back in its grace is fenced all the same
            if self._fenced or not self.is_alive():
                return False
            self._fenced = True
            self._abandoned = True  # before the kill: its end is not this attempt's to tell
        if (execution := self._execution) is not None:
            execution.kill()
        self.request(Abandon())  # one that starts now is killed as it begins
        return True

    # -- Sink (called from the runner's reader threads) ----------------------
    def log(self, stream: str, line: str) -> None:
        line = storable(line)  # system lines quote errors, which may hold any text
        with self._lock:
            self._await_room()
            self._waiting_chars += len(line)
            self._seq += 1
            now = self._now()
            self._logs.append(LogWritten(at=now, seq=self._seq, stream=stream, line=line))
            if self._cap.head_full(line):  # keep a place for the marker after the head
                self._seq += 1
                self._cap.marker_seq = self._seq
                marker = self._cap.marker()
                self._logs.append(LogWritten(at=now, seq=self._seq, stream="system", line=marker))
            self._values["log_lines"] = self._seq

    def _await_room(self) -> None:
        """Hold a reader of the job's output while the backlog is full (:data:`BACKLOG_LINES`)
        until a flush takes it; never the run's own thread, which flushes, nor once
        nothing more of this attempt is to be stored."""
        while (
            (
                len(self._logs) + self._in_flight >= BACKLOG_LINES
                or self._waiting_chars >= BACKLOG_CHARS
            )
            and threading.get_ident() != self._run_thread
            and not (self._lost or self._fenced or self._handed_back or self._unheld or self.over)
        ):
            self._wake.set()
            self._room.wait(0.5)

    def progress(self, fraction: float | None, message: str | None) -> None:
        if message is not None:  # job code's text, of any length: a status line is stored
            message = shortened(storable(message), PROGRESS_MESSAGE_MAX)
        with self._lock:
            if fraction is None:  # a message alone (ctx.progress(message=…)): as far as before
                fraction = self._values.get("progress", self.job.progress)
            self._events.append(
                ProgressReported(at=self._now(), fraction=fraction, message=message)
            )
            self._values |= {"progress": fraction, "progress_message": message}

    def metric(self, name: str, value: float) -> None:
        name = storable(name)
        with self._lock:
            self._metrics[name] = value
            self._events.append(MetricReported(at=self._now(), name=name, value=value))
            self._values["metrics"] = dict(self._metrics)

    def details(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._values["details"] = storable_json(dict(data))

    def output(self, nbytes: int) -> None:
        with self._lock:
            self._output_bytes += nbytes
            self._values["output_bytes"] = self._output_bytes

    def ended(self) -> None:
        self._wake.set()

    def together(self) -> AbstractContextManager[object]:
        """Held, no flush takes what is handed in until all of it is (one batch), unless
        a reader waits for room (:meth:`_await_room`), which a shared reader never does."""
        return self._lock

    def record(self, data: dict[str, Any]) -> bool:
        """Called from the run's own thread (an executor's start or adopt)."""
        self.details(data)
        self._flush(until_stored=True)
        return not self._lost

    def controlled(self, control: str, error: str | None) -> None:
        self._requests.put(Controlled(Control(control), error))
        self._wake.set()

    # -- the run -----------------------------------------------------------
    def start(self) -> None:
        if self._started:
            raise RuntimeError(f"{self.name} was started already")
        self._started = True
        RUN_THREADS.run(self.name, self._drive)

    def is_alive(self) -> bool:
        return self._started and not self._finished.is_set()

    def join(self, timeout: float | None = None) -> None:
        self._finished.wait(timeout)

    def _drive(self) -> None:
        try:
            self.run()
        finally:
            self._finished.set()

    def run(self) -> None:
        self._run_thread = threading.get_ident()
        span = tracing.start_attempt(self.job)
        try:
            self._run()
        except Exception as exc:
            log.exception("job run crashed", extra={"job": self.job.id})
            self._fail(exc)
        finally:
            self.over = True
            # The execution holds this run as its sink: dropping it breaks the cycle, so
            # an ended run (its process object, pipes, buffers) is freed as soon as the
            # worker lets go of it, not at the next full collection of the cycle
            # collector, which at 50 jobs a second lets thousands of them pile up.
            self._execution = None
            tracing.end_attempt(span, self._end)
            self._settings.on_done()

    def _run(self) -> None:
        execution = self._execution = self._begin(self.job)
        if self._stopping.is_set():  # asked while it started (its start may have given up):
            self._apply_requests(execution)  # the request says how it ends, not the start
            if self._handed_back:
                return
        with self._lock:  # stored with the first batch of output, or with the end
            self._values["pid"] = execution.pid
        self._watch = self._sla_watch()
        # A job that ends within its first interval costs no write and no sample
        # while it runs: its start line and pid go with its end, its usage is the
        # runner's figure at the end.
        next_flush = time.monotonic() + FLUSH_INTERVAL
        next_sample = time.monotonic() + SAMPLE_INTERVAL
        while True:
            self._wake.clear()  # before looking: a wake-up from now on is not lost
            if (result := execution.wait(0)) is not None:
                break
            self._apply_requests(execution)
            if self._handed_back:  # requeued: whatever the executor says later is not ours
                return
            self._enforce_limits(execution)
            self._check_budgets(execution)
            now = time.monotonic()
            if now >= next_sample:
                self._sample(execution.sample())
                next_sample = now + SAMPLE_INTERVAL
            if now >= next_flush or len(self._logs) >= FLUSH_LINES:
                self._flush()
                next_flush = now + FLUSH_INTERVAL
            self._wake.wait(POLL_INTERVAL)
        if self._abandoned:
            return
        self._check_budgets(None)  # the final figures: a batch job often reports them last
        self._finish(self._run_end(result))

    def _begin(self, job: Job) -> Execution:
        if self.adopted:
            self.log("system", f"attempt {job.attempt} adopted by {job.worker}")
            return self._runner.adopt(job, run_token(job), self)
        self.log("system", f"attempt {job.attempt} started on {job.host} by {job.worker}")
        return self._runner.start(job.id, run_token(job), job.spec, self, give_up=self._stopping)

    def _run_end(self, result: Result) -> RunEnd:
        peak = max(result.peak_memory or 0, self._peak_rss) or None
        return RunEnd(
            succeeded=result.succeeded and self._reason is None,
            exit_code=result.exit_code,
            error=storable(error) if (error := self._error or result.error) else None,
            reason=self._reason or _reason_of(result),
            cpu_seconds=result.cpu_seconds,
            peak_memory=peak,
        )

    def _apply_requests(self, execution: Execution) -> None:
        while not self._requests.empty():
            match self._requests.get():
                case Abandon():
                    self._abandoned = True
                    execution.kill()
                case HandBack(why):
                    self._hand_back(execution, why)
                case Control.KILL:
                    self._terminate(execution, Reason.KILLED, outcomes.KILLED_BY_USER)
                case Control.PAUSE:
                    self._pause(execution)
                case Control.RESUME:
                    self._resume(execution)
                case Controlled(control, error):
                    self._controlled(control, error)

    def _pause(self, execution: Execution) -> None:
        self._seen.discard(Control.RESUME)
        if self.job.state is JobState.RUNNING and self._kill_at is None:
            if execution.pause():  # else marked once the executor says it took effect
                self._paused()
        else:
            self._set({}, expect=LIVE, clears=Control.PAUSE)

    def _resume(self, execution: Execution) -> None:
        self._seen.discard(Control.PAUSE)
        if self.job.state is JobState.PAUSED and self.job.paused_at is not None:
            if execution.resume():
                self._resumed()
        else:
            self._set({}, expect=LIVE, clears=Control.RESUME)

    def _controlled(self, control: Control, error: str | None) -> None:
        """A deferred control's outcome: the state changes only when it took effect."""
        if error is not None:
            self._refused(control, error)
        elif control is Control.PAUSE and self.job.state is JobState.RUNNING:
            if self._kill_at is None:
                self._paused()
        elif control is Control.RESUME and self.job.state is JobState.PAUSED:
            self._resumed()

    def _refused(self, control: Control, error: str) -> None:
        """The job goes on as it was; the intent is dropped (a user may ask again)."""
        self._seen.discard(control)
        self.log("system", error)
        log.warning("control refused", extra={"job": self.job.id, "error": error})
        event = JobStateChanged(
            at=self._now(), state=self.job.state, reason=f"{control.value}_refused"
        )
        self._set({}, expect=LIVE, event=event, clears=control)

    def _paused(self) -> None:
        self._flush()  # its pid and output so far come before the pause, not later
        now = self._now()
        event = JobStateChanged(at=now, state=JobState.PAUSED)
        values = {"state": JobState.PAUSED, "paused_at": now}
        self._set(values, event=event, clears=Control.PAUSE)

    def _resumed(self) -> None:
        if self.job.paused_at is not None:
            now = self._now()
            paused = self.job.paused_seconds + (now - self.job.paused_at).total_seconds()
            values = {
                "state": JobState.RUNNING,
                "paused_at": None,
                "paused_seconds": paused,
            }
            resumed = JobStateChanged(at=now, state=JobState.RUNNING, resumed=True)
            self._set(values, event=resumed, clears=Control.RESUME)

    def _terminate(self, execution: Execution, reason: str, error: str) -> None:
        if self._kill_at is not None:
            return
        self._reason, self._error = reason, error
        self.log("system", f"stopping: {error} (SIGTERM, SIGKILL after the grace period)")
        execution.terminate()
        grace = self.job.spec.kill_grace
        self._kill_at = time.monotonic() + (self._settings.kill_grace if grace is None else grace)

    def _enforce_limits(self, execution: Execution) -> None:
        if self._kill_at is not None:
            if time.monotonic() >= self._kill_at:
                execution.kill()
                self._kill_at = float("inf")
            return
        timeout = self.job.spec.timeout
        if timeout is not None and self._active_seconds() > timeout:
            self._terminate(execution, Reason.TIMEOUT, f"timed out after {timeout:g} s")

    # -- budgets and samples ------------------------------------------------
    def _sla_watch(self) -> SlaWatch | None:
        budgets = self.job.spec.sla
        if budgets is None:
            return None
        expected, reported = None, frozenset[str]()
        try:
            if budgets.expected == "auto":
                expected = sla.baseline(
                    self._store.monitor.recent_runtimes(self.job.type, sla.HISTORY)
                )
            if self.job.attempt > 1 or self.job.restart_count:
                reported = self._store.monitor.breached_budgets(self.job.id)
        except Exception:  # a failed lookup must not stop the job (at worst, a repeat)
            log.warning("could not read the SLA history", extra={"job": self.job.id})
        return SlaWatch(budgets, expected=expected, reported=reported)

    def _check_budgets(self, execution: Execution | None) -> None:
        """Record (and act on) budgets broken; ``execution`` is None once the job ended."""
        if self._watch is None:
            return
        with self._lock:
            output, metrics = self._output_bytes, dict(self._metrics)
        ended = execution is None
        breaches = self._watch.check(self._active_seconds(), output, metrics, ended=ended)
        for breach in breaches:
            action = "; stopping the job" if breach.kill else ""
            self.log("system", breach.describe() + action)
            if not breach.reported:  # by an earlier attempt: stopped, not recorded again
                record = SlaBreached(at=self._now(), attempt=self.job.attempt, **breach.to_dict())
                with self._lock:
                    self._events.append(record)
                log.warning("SLA breach", extra={"job": self.job.id, **record.payload()})
            if breach.kill and execution is not None:
                self._terminate(execution, Reason.SLA, breach.describe())
        if breaches and not ended:
            self._flush()  # now, while it runs: someone is told before it ends

    def _sample(self, sample: Sample) -> None:
        self._peak_rss = max(self._peak_rss, sample.rss)
        self._samples.take(self._now(), sample, self._peak_rss)

    def _active_seconds(self) -> float:
        return self.job.evolve(finished_at=None).runtime_at(self._now()) or 0.0

    def _hand_back(self, execution: Execution, why: str) -> None:
        """Stop the job (grace, then kill) and requeue it. The wait is bounded: an executor
        whose controller does not answer (slurmctld down) cannot confirm the end, and
        the worker must still stop; the next attempt cancels a Slurm job left running
        before it submits its own."""
        self._abandoned = True
        execution.terminate()
        grace = self._settings.kill_grace
        if not self._ends_within(execution, grace):
            execution.kill()
            if not self._ends_within(execution, grace):
                self.log("system", f"its end was not confirmed within {2 * grace:g} s")
        self.log("system", f"handed back: {why}")
        self._flush(until_stored=True)
        if not self._lost:  # else the job is gone, or another attempt's: not ours to requeue
            now = self._now()
            end = outcomes.requeued_end(self.job, now, why)
            self._persist(lambda: self._store.jobs.end_jobs([end], now))
        self._handed_back = True

    # -- writing -----------------------------------------------------------
    def _finish(self, end: RunEnd) -> None:
        """Write the end with the last of the output, in one transaction.

        Output beyond one batch, samples and a log trim are written before it.
        """
        now = self._now()  # when it ended, however long the database keeps us waiting
        with self._lock:
            backlog = len(self._logs) > FLUSH_LINES
        if backlog or self._samples.waiting:
            self._flush(until_stored=True)
        if not self._lost:
            self._record_end(end, now)

    def _record_end(self, end: RunEnd, now: datetime, *, output: bool = True) -> None:
        update = outcomes.finished(self.job, end, now)
        logs: list[LogWritten] = []
        events: list[Record] = []
        values: dict[str, Any] = {}
        if output:
            with self._lock:
                logs, events, values = self._logs, self._events, self._values
                self._logs, self._events, self._values = [], [], {}
        instead = outcomes.killed_instead(self.job, update, now)
        job_end = JobEnd(
            update, self._settings.worker, self.job.attempt, logs, events, values, if_killed=instead
        )
        try:
            self._write_end(job_end)
        except Exception:
            self._unstored += len(logs)  # not kept: the same write would fail again
            with self._lock:
                self._events, self._values = events + self._events, values | self._values
            raise
        self._end = end
        self._cap.written(logs)
        self._trim(until_stored=True)

    def _write_end(self, end: JobEnd) -> Ended | None:
        """Store the end; what waits for the job is settled by the writer, or here."""
        writer = self._settings.end_writer
        if writer is not None:
            try:
                return writer.write(end)
            except Stalled:
                log.warning("the worker's loop did not store the end; the run stores it")
        tries = 0

        def write() -> Ended | None:
            nonlocal tries
            tries += 1
            ended = self._store.jobs.end_jobs([end], self._now())[0]
            if ended is None and (tries > 1 or writer is not None):  # stored unseen before?
                ended = stored_end(end, self._store.jobs.get_job(end.update.job_id))
            return ended

        ended = self._persist(write)
        if ended is not None and ended.job.state.terminal:
            self._settings.on_terminal(ended.job.id)
        return ended

    def _fail(self, exc: Exception) -> None:
        """End the attempt failed after an error in the worker (a bug, a refused write)."""
        execution = self._execution
        if execution is not None and execution.wait(0) is None:
            self._stop_now(execution)
        if self._abandoned:
            return
        error = f"internal error in the worker: {type(exc).__name__}"
        if self._unstored:
            error += f"; output lines not stored: {self._unstored}"
        self.log("system", f"{error}: {outage.first_line(exc)}")
        with self._lock:  # the batch that failed may have held them
            self._values |= {"log_lines": self._seq, "output_bytes": self._output_bytes}
        end = RunEnd(succeeded=False, error=error, reason=Reason.WORKER_ERROR)
        try:
            self._finish(end)
        except Exception:  # the output is refused again: still, the job must end
            log.exception("could not store a failed job's output", extra={"job": self.job.id})
            self._record_end(end, self._now(), output=False)

    def _ends_within(self, execution: Execution, seconds: float, *, write: bool = True) -> bool:
        """Whether ``execution`` ends within ``seconds``, its output written meanwhile
        (unless not ``write``): a reader waiting for room (:meth:`_await_room`) reads the
        rest of the output, and with it the end, only once a flush made room."""
        deadline = time.monotonic() + seconds
        while execution.wait(0.1) is None:
            if time.monotonic() >= deadline:
                return False
            if write:
                self._flush()
        return True

    def _stop_now(self, execution: Execution) -> None:
        with self._lock:  # failing: its writes may fail again, so readers wait no more
            self._unheld = True
            self._room.notify_all()
        execution.kill()
        self._ends_within(execution, self._settings.kill_grace, write=False)

    def _set(
        self,
        values: dict[str, Any],
        *,
        expect: frozenset[JobState] | None = None,
        event: Record | None = None,
        clears: Control | None = None,
    ) -> None:
        expected = expect or frozenset({self.job.state})
        now = self._now()
        update = JobUpdate(self.job.id, expected, values, event, clears=clears)
        updated = self._persist(lambda: self._store.jobs.update_job(update, now))
        if updated is None:
            # Its state left ``expected``: a try whose commit went unseen may have written
            # it (a pause the run would not know of, and a resume it would then drop).
            # The stored job is the truth while it is still this attempt's, and live (an
            # end written by another, a lost worker's, is the guarded end's to meet).
            stored = self._persist(lambda: self._store.jobs.get_job(self.job.id))
            if (
                stored is not None
                and stored.state in LIVE
                and (stored.worker, stored.attempt) == (self.job.worker, self.job.attempt)
            ):
                updated = stored
        if updated is not None:
            self.job = updated

    def _flush(self, *, until_stored: bool = False) -> None:
        """Write what is waiting, in transactions of at most ``FLUSH_LINES`` lines.

        While the database is out of reach what is left is kept, in order, for the
        next flush; ``until_stored`` (the run is over) waits for the database instead.
        """
        with self._lock:
            logs, events, values = self._logs, self._events, self._values
            self._logs, self._events, self._values = [], [], {}
            self._in_flight = len(logs)
        while (logs or events or values) and not self._lost:
            chunk, rest = logs[:FLUSH_LINES], logs[FLUSH_LINES:]
            # Every batch stores the count of lines it brings the job to: a new attempt,
            # and the note of a lost one, number their lines from it.
            batch_values = {"log_lines": chunk[-1].seq} if rest else values
            batch = partial(self._append, chunk, events, batch_values)
            try:
                stored = self._write(batch, until_stored)
            except Exception:
                self._unstored += len(chunk)  # not kept: the same write would fail again
                with self._lock:  # the rest may well be storable
                    self._logs = rest + self._logs
                    self._in_flight = 0
                    self._waiting_chars -= _chars(chunk)
                    self._values = (values if rest else {}) | self._values
                    self._room.notify_all()
                raise
            if not stored:
                with self._lock:  # keep it, in order, for the next flush
                    self._logs, self._events = logs + self._logs, events + self._events
                    self._in_flight = 0
                    self._values = values | self._values
                return
            with self._lock:  # stored: room for as many
                self._in_flight -= len(chunk)
                self._waiting_chars -= _chars(chunk)
                self._room.notify_all()
            if self._lost:
                return
            logs, events = rest, []
            if not rest:
                values = {}
            self._cap.written(chunk)
            self._trim(until_stored)
        if not self._lost:
            self._write(self._write_samples, until_stored)

    def _write_samples(self) -> None:
        if not self._samples.write(self._store):
            self._lose()

    def _lose(self) -> None:
        """The job was removed or taken from us: kill the processes, write nothing more."""
        log.info(
            "job removed, or this attempt is no longer its own; stopping the run",
            extra={"job": self.job.id, "attempt": self.job.attempt},
        )
        self._lost = True
        self.request(Abandon())

    def _append(self, logs: list[LogWritten], events: list[Record], values: dict[str, Any]) -> None:
        """One batch in one transaction. When the connection broke during the last try,
        its commit may have gone through unseen: lines stored then are not stored twice."""
        if self._doubtful and logs:
            seen = self._store.jobs.log_lines(self.job.id, logs[0].seq - 1, len(logs))
            stored = {line.seq for line in seen}
            logs = [line for line in logs if line.seq not in stored]
        try:
            written = self._store.jobs.append_output(
                self.job.id,
                logs,
                events,
                values,
                worker=self._settings.worker,
                attempt=self.job.attempt,
            )
        except Exception as exc:
            self._doubtful = outage.unavailable(exc)
            raise
        self._doubtful = False
        if not written:
            self._lose()

    def _trim(self, until_stored: bool) -> None:
        """Past the log cap: delete the oldest lines of the tail, keep the marker true."""
        trim = self._cap.to_trim()
        if trim is None:
            return
        marker_seq, upto = trim
        write = partial(
            self._store.jobs.trim_log, self.job.id, marker_seq, upto, self._cap.marker()
        )
        if self._write(write, until_stored):
            self._cap.trimmed(upto)

    def _write(self, write: Callable[[], object], until_stored: bool) -> bool:
        """``write()``; False when the database is out of reach and it is to be tried later
        (with ``until_stored``, it is tried until it is stored). Other errors are raised."""
        if until_stored:
            self._persist(write)
            return True
        try:
            write()
        except Exception as exc:
            if not outage.unavailable(exc):
                raise
            self._unreachable(exc)
            return False
        self._outage.worked()
        return True

    def _persist(self, write: Callable[[], T]) -> T:
        """Retry a write until the database takes it (it may be restarting)."""
        written = outage.retry_while_unavailable(write, self._unreachable)
        self._outage.worked()
        return written

    def _unreachable(self, exc: BaseException) -> None:
        self._outage.failed(exc)

    def _now(self) -> datetime:
        return self._settings.clock()


def _chars(lines: list[LogWritten]) -> int:
    return sum(len(line.line) for line in lines)


def _reason_of(result: Result) -> str | None:
    if result.succeeded:
        return None
    if result.reason is not None:  # the executor knows (Slurm's TIMEOUT, NODE_FAIL, …)
        return result.reason
    if result.signal is not None:
        return Reason.SIGNAL
    if result.spawn_failed:
        return Reason.SPAWN
    return Reason.EXIT if result.exit_code is not None else Reason.EXCEPTION
