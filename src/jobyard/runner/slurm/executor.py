"""The Slurm executor: submits jobs with ``sbatch``, watches all of them with one poll.

Two threads serve every Slurm job of a worker, started with the first one:

- the **poller** asks Slurm once per interval about all of them (one ``squeue``
  for the states, one ``sstat`` now and then for CPU and memory); a job that
  left the queue is looked up once (``scontrol show job``, then ``sacct``) for
  its exit code and reason. A controller that is down or slow only delays the
  next answer: no job ends for it, and no job's own thread waits for it.
- the **follower** reads the jobs' output files (on the shared ``workdir``) and
  hands their lines to each job's sink, with the ``##jobyard`` protocol, and the
  offsets read so far (kept on the job row, so that an adopter goes on from there).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
import threading
import time
from collections.abc import Sequence

from jobyard.models import Job, JobSpec
from jobyard.runner.contract import Execution, FailedExecution, Sink, spawn_failed
from jobyard.runner.environment import JobEnvironment
from jobyard.runner.slurm.batch import (
    SlurmOptions,
    attempt_of,
    identity,
    job_name,
    output_paths,
    sbatch_argv,
    script,
)
from jobyard.runner.slurm.cli import SlurmCli, SlurmError
from jobyard.runner.slurm.execution import SlurmExecution, output_files, remove
from jobyard.runner.slurm.states import (
    GONE,
    HOLDS,
    NOT_OURS,
    SlurmState,
    parse_sacct,
    parse_show_job,
    parse_squeue,
    parse_sstat,
)
from jobyard.runner.slurm.workdir import prepare
from jobyard.states import JobState

log = logging.getLogger("jobyard.runner.slurm")

POLL_INTERVAL = 1.0  # seconds between two looks at the states of all jobs
FOLLOW_INTERVAL = 0.2  # seconds between two reads of the output files
USAGE_INTERVAL = 5.0  # seconds between two looks at CPU and memory (sstat)


class SlurmExecutor:
    """Runs jobs whose spec names ``executor: slurm``. One per worker; ``close`` it.

    ``install`` names the installation (every worker of one database gives the same):
    with the job id and attempt it marks each Slurm job as ours (:func:`.identity`).
    A job marked with one of the names it had ``formerly`` (an earlier release's) is
    ours too.
    """

    def __init__(
        self,
        environment: JobEnvironment,
        cli: SlurmCli | None = None,
        *,
        install: str = "local",
        formerly: Sequence[str] = (),
        poll_interval: float = POLL_INTERVAL,
        follow_interval: float = FOLLOW_INTERVAL,
        usage_interval: float = USAGE_INTERVAL,
    ) -> None:
        self.cli = cli or SlurmCli()
        self.install = install
        self._names = (install, *formerly)
        self._environment = environment
        self._intervals = (poll_interval, follow_interval, usage_interval)
        self._jobs: dict[str, SlurmExecution] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next_usage = 0.0
        self._complained = False  # the controller's silence was logged already

    # -- starting -----------------------------------------------------------------
    def start(
        self,
        job_id: int,
        token: str,
        spec: JobSpec,
        sink: Sink,
        *,
        give_up: threading.Event | None = None,
    ) -> Execution:
        """Submit the job; a refused submission gives an execution that already failed
        (a submission does not wait: ``give_up`` has nothing to end)."""
        options = SlurmOptions.from_spec(spec.executor or {})
        if not spec.argv:
            return FailedExecution(spawn_failed("spawn failed: empty command", 127), sink)
        mark = identity(self.install, job_id, attempt_of(token))
        try:
            prepare(options.workdir)
        except OSError as exc:
            return FailedExecution(spawn_failed(f"spawn failed: {exc}", 126), sink)
        try:
            ref = self._submit(job_id, mark, token, spec, options)
        except SlurmError as exc:  # it names the command
            return FailedExecution(spawn_failed(f"spawn failed: {exc}", 126), sink)
        except OSError as exc:
            return FailedExecution(spawn_failed(f"spawn failed: sbatch: {exc}", 126), sink)
        paths = output_files(output_paths(options.workdir, job_id), ref)
        execution = SlurmExecution(self.cli, ref, token, paths, sink, identity=mark)
        sink.log("system", f"submitted to Slurm as job {ref}")
        if error := self._release(ref, execution, sink):
            with contextlib.suppress(SlurmError):
                self.cli.run(["scancel", "--me", ref])
            return FailedExecution(spawn_failed(f"spawn failed: {error}", 126), sink)
        self._track(execution)
        return execution

    def _release(self, ref: str, execution: SlurmExecution, sink: Sink) -> str | None:
        """Store the held job's id on the job row, then let Slurm start it; why not, if not."""
        if not sink.record(execution.details()):
            return f"the Slurm job id {ref} could not be recorded; the job was cancelled"
        try:
            self.cli.run(["scontrol", "release", ref])
        except SlurmError as exc:
            if self._out_of_hold(execution):
                return None
            return f"Slurm did not release job {ref}: {exc}"
        return None

    def _out_of_hold(self, execution: SlurmExecution) -> bool:
        """After a refused release: whether the job left its hold all the same, cancelled
        (or released) in Slurm in the moment after its id was recorded. It is followed
        then, and ends as Slurm says: a job cancelled outside jobyard is ``killed``, not
        a failed start."""
        try:  # a job purged already is looked up in the accounting
            shown = self._ended(execution.ref, None)
        except SlurmError:
            return False
        if shown.state == GONE:
            return False
        if shown.live:
            return shown.reason not in HOLDS
        # Its reason is still the hold's, which jobyard set: not why it ended.
        reason = None if shown.reason in HOLDS else shown.reason
        execution.end = dataclasses.replace(shown, reason=reason)
        return True

    def adopt(self, job: Job, token: str, sink: Sink) -> Execution:
        """Follow the Slurm job a dead worker started for ``job``, from where its log stopped."""
        data = job.details
        ref = str(data.get("slurm_job_id") or "")
        paths = (str(data.get("stdout") or ""), str(data.get("stderr") or ""))
        offsets = [int(n) for n in data.get("offsets") or (0, 0)]
        if not ref.isdigit() or not all(paths) or len(offsets) != 2:
            error = "spawn failed: the job's Slurm record is incomplete; it cannot be followed"
            return FailedExecution(spawn_failed(error, 126), sink)
        mark = data.get("identity")  # None: submitted before jobs were marked
        execution = SlurmExecution(
            self.cli, ref, token, paths, sink, (offsets[0], offsets[1]), identity=mark
        )
        sink.log("system", f"following Slurm job {ref} again")
        if job.state is JobState.PAUSED:
            execution.paused_as_found()
        sink.details(execution.details())
        self._track(execution)
        return execution

    def _submit(
        self, job_id: int, mark: str, token: str, spec: JobSpec, options: SlurmOptions
    ) -> str:
        """``sbatch`` the job's script; the Slurm job id. Never two Slurm jobs for one try:
        before it retries, a submission that timed out is looked for by its identity."""
        self._cancel_leftovers(job_id)  # an earlier attempt's job, still running: not twice
        name = job_name(job_id)
        fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".sh", dir=options.workdir)
        env = self._environment.for_job(job_id, token, spec.env, {}, local=False)
        with os.fdopen(fd, "wb") as file:
            file.write(script(spec.argv or [], env))
        argv = sbatch_argv(options, job_id, mark, path, spec.cwd, spec.timeout)
        try:
            for attempt in range(1, self.cli.tries + 1):
                try:  # with the worker's environment: SLURM_CONF, PATH are the worker's
                    return self.cli.run(argv, tries=1).strip().split(";")[0]
                except SlurmError as exc:
                    if not exc.transient or attempt == self.cli.tries:
                        raise
                    if found := [ref for ref, seen in self._ours(job_id) if seen == mark]:
                        return found[-1]
                time.sleep(self.cli.backoff * attempt)
            raise AssertionError("unreachable")
        finally:
            remove(path)  # sbatch keeps its own copy

    def _ours(self, job_id: int) -> list[tuple[str, str]]:
        """(Slurm id, identity) of the live Slurm jobs of this user that are attempts of
        ``job_id`` in this installation: a job of the same name that is not is left alone."""
        prefixes = tuple(identity(name, job_id, 0).rpartition(":")[0] + ":" for name in self._names)
        argv = ["squeue", "-h", "--me", f"--name={job_name(job_id)}", "-o", "%i|%k"]
        with contextlib.suppress(SlurmError):
            lines = self.cli.run(argv).split()
            pairs = [tuple(line.split("|", 1)) for line in lines if "|" in line]
            return [(ref, mark) for ref, mark in pairs if mark.startswith(prefixes)]
        return []

    def _cancel_leftovers(self, job_id: int) -> None:
        for ref, mark in self._ours(job_id):
            log.warning(
                "cancelling an earlier attempt's Slurm job",
                extra={"slurm_job": ref, "identity": mark},
            )
            with contextlib.suppress(SlurmError):
                self.cli.run(["scancel", "--me", ref])

    # -- tracking -----------------------------------------------------------------
    def _track(self, execution: SlurmExecution) -> None:
        with self._lock:
            self._jobs[execution.ref] = execution
            if not self._threads:
                for target, name in (
                    (self._poll_loop, "slurm-poll"),
                    (self._follow_loop, "slurm-follow"),
                ):
                    thread = threading.Thread(target=target, name=name, daemon=True)
                    self._threads.append(thread)
                    thread.start()

    def _tracked(self) -> list[SlurmExecution]:
        with self._lock:
            return list(self._jobs.values())

    def _follow_loop(self) -> None:
        while not self._stop.wait(self._intervals[1]):
            for execution in self._tracked():
                try:
                    if execution.end is None:
                        execution.follow()
                    else:
                        execution.finish()
                        with self._lock:
                            self._jobs.pop(execution.ref, None)
                except Exception:
                    log.exception(
                        "following a Slurm job failed", extra={"slurm_job": execution.ref}
                    )

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._intervals[0]):
            live = [e for e in self._tracked() if e.end is None]
            if not live:
                continue
            try:
                self._poll(live)
            except SlurmError as exc:
                if not self._complained:
                    log.warning(
                        "Slurm does not answer; jobs keep running", extra={"error": str(exc)}
                    )
                self._complained = True
            except Exception:
                log.exception("polling Slurm failed")

    def _poll(self, live: list[SlurmExecution]) -> None:
        states = self._states([e.ref for e in live])
        self._complained = False
        for execution in live:
            state = states.get(execution.ref)
            if state is None or not state.live:
                state = self._ended(execution.ref, state)  # or squeue missed it: ask again
            if not execution.owns(state):
                log.error(
                    "a Slurm job with a recorded id is not ours; not following it",
                    extra={"slurm_job": execution.ref, "identity": state.comment},
                )
                state = SlurmState(NOT_OURS)
            if state.live:
                execution.state = state
            else:
                execution.end = state
        if time.monotonic() >= self._next_usage:
            self._next_usage = time.monotonic() + self._intervals[2]
            self._usage(
                [e for e in live if e.end is None and e.state and e.state.state == "RUNNING"]
            )

    def _states(self, refs: list[str]) -> dict[str, SlurmState]:
        """One ``squeue`` for all: jobs it does not know are missing from the answer."""
        argv = ["squeue", "-h", "--states=all", f"--jobs={','.join(refs)}", "-o", "%i|%T|%r|%k"]
        try:
            return parse_squeue(self.cli.run(argv, tries=1))
        except SlurmError as exc:
            if "invalid job id" in str(exc).lower():
                return {}  # none of them is known any more
            raise

    def _ended(self, ref: str, seen: SlurmState | None) -> SlurmState:
        """The final state of a job that left the queue: exit code and reason included."""
        try:
            shown = parse_show_job(self.cli.run(["scontrol", "-o", "show", "job", ref]))
            if shown is not None:
                return shown
        except SlurmError as exc:
            if "invalid job id" not in str(exc).lower():
                raise
        with contextlib.suppress(SlurmError):  # accounting is often off: then we know less
            argv = ["sacct", "-n", "-P", "-X", "-j", ref, "-o", "State,ExitCode,Reason"]
            accounted = parse_sacct(self.cli.run(argv, tries=1))
            if accounted is not None:
                return accounted
        return seen or SlurmState(GONE)

    def _usage(self, running: list[SlurmExecution]) -> None:
        if not running:
            return
        refs = ",".join(e.ref for e in running)
        argv = ["sstat", "-n", "-P", "-a", "-j", refs, "-o", "JobID,AveCPU,MaxRSS"]
        try:
            usage = parse_sstat(self.cli.run(argv, tries=1))
        except SlurmError:
            return  # no accounting gatherer: no figures, the job runs on
        for execution in running:
            if execution.ref in usage:
                execution.usage(*usage[execution.ref])

    def close(self, timeout: float = 5.0) -> None:
        """Stop the poll and follower threads; nothing is cancelled here.

        A stopping worker hands its jobs back first, which cancels their Slurm jobs
        (``scancel``). When the controller does not answer, that cancel may not reach
        it: the Slurm job then runs on until the job's next attempt, which cancels it
        (found by its identity) before it submits its own. Only a worker that dies
        without stopping leaves jobs for adoption.
        """
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
