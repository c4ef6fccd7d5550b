"""Command jobs: an argv spawned directly (never through a shell) in a new session.

Its environment is the job's clean one (:mod:`jobyard.runner.environment`), and
it runs as its type's ``user`` when it has one (:mod:`jobyard.runner.accounts`).

When the command exits, what is left of its group is killed, and so is every
process carrying the job's token in its environment (descendants that left the
group with ``setsid`` and were never seen). Only then is the output drained.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence

from jobyard.models import JobSpec
from jobyard.runner.accounts import Account
from jobyard.runner.contract import Execution, FailedExecution, Result, Sample, Sink, spawn_failed
from jobyard.runner.environment import JobEnvironment
from jobyard.runner.output import Pump, count_and_split, emit_stdout
from jobyard.runner.procs import (
    REAP_BOUND,
    Exit,
    ProcessGroup,
    Usage,
    kill_job_processes,
    peak_rss_of,
)
from jobyard.runner.threads import Threads

YOUNG = 1.0  # seconds: a job this young cannot have gone round the cycle of pids


SUPERVISORS = Threads("cmd-idle")


def start_command(
    job_id: int,
    token: str,
    spec: JobSpec,
    sink: Sink,
    environment: JobEnvironment,
    account: Account | None = None,
) -> Execution:
    """Spawn ``spec.argv`` (as ``account``, if given) in the job's clean environment.

    A spawn failure gives an execution that already failed.
    """
    argv = spec.argv or []
    if not argv:
        return FailedExecution(spawn_failed("spawn failed: empty command", 127), sink)
    person = {} if account is None else account.variables()
    try:
        proc = subprocess.Popen(
            argv,
            start_new_session=True,  # its own process group, away from our terminal
            stdin=_devnull(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=spec.cwd,
            env=environment.for_job(job_id, token, spec.env, person),
            **({} if account is None else account.popen_args()),
        )
    except OSError as exc:
        return FailedExecution(spawn_failure(argv, spec.cwd, exc), sink)
    return CommandExecution(proc, token, sink)


def _devnull() -> int:
    """One descriptor of /dev/null for every job's stdin (subprocess opens one per process)."""
    global _DEVNULL
    if _DEVNULL is None:
        _DEVNULL = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return _DEVNULL


_DEVNULL: int | None = None


def spawn_failure(argv: Sequence[str], cwd: str | None, exc: OSError) -> Result:
    """126/127 like a shell; the error names what was missing."""
    if cwd is not None and exc.filename == cwd:
        return spawn_failed(f"spawn failed: working directory {cwd!r}: {exc.strerror}", 126)
    if isinstance(exc, FileNotFoundError):
        return spawn_failed(f"spawn failed: command not found: {argv[0]}", 127)
    if isinstance(exc, PermissionError):
        return spawn_failed(f"spawn failed: permission denied: {argv[0]}", 126)
    return spawn_failed(f"spawn failed: {argv[0]}: {exc.strerror or exc}", 126)


class CommandExecution:
    """A running command. One thread reads its output and reaps it."""

    def __init__(self, proc: subprocess.Popen[bytes], token: str, sink: Sink) -> None:
        self.pid = proc.pid
        self._started = time.monotonic()
        self._proc = proc
        self._token = token
        self._sink = sink
        self._group = ProcessGroup(proc.pid)
        self._usage = Usage()
        self._exit: Exit | None = None
        self._result: Result | None = None
        self._done = threading.Event()
        self._pump = Pump(proc.pid)
        SUPERVISORS.run(f"cmd-{proc.pid}", self._supervise)

    def pause(self) -> bool:
        """Stop the group and what left it; False when its leader had exited already (the
        job is ending: nothing was paused, and its end comes next)."""
        self._group.stop()
        return not self._leader_exited()

    def _leader_exited(self) -> bool:
        if self._exit is not None:
            return True
        try:  # a look only (WNOWAIT): the supervising thread reaps it
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True  # reaped already

    def resume(self) -> bool:
        self._group.cont()
        return True

    def terminate(self) -> None:
        self._group.cont()  # a stopped process would not see SIGTERM, nor end if waited for
        self._group.signal(signal.SIGTERM)

    def kill(self) -> None:
        self._group.kill()

    def sample(self) -> Sample:
        if self._exit is not None:
            return Sample(0, self._usage.cpu)
        return Sample(*self._usage.add(*self._group.sample()))

    def wait(self, timeout: float) -> Result | None:
        self._done.wait(timeout)
        return self._result

    def _supervise(self) -> None:
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        sink = self._sink
        self._pump.add(self._proc.stdout.fileno(), count_and_split(sink, self._on_stdout))
        self._pump.add(self._proc.stderr.fileno(), count_and_split(sink, self._on_stderr))
        drained = self._pump.run(self._on_exit, self._on_tick)
        if not drained:
            sink.log("system", "stopped reading output: a process outside the job holds it open")
        self._proc.stdout.close()
        self._proc.stderr.close()
        self._result = self._make_result()
        self._done.set()
        sink.ended()

    def _on_stdout(self, line: str) -> None:
        emit_stdout(self._sink, line)

    def _on_stderr(self, line: str) -> None:
        self._sink.log("stderr", line)

    def _on_tick(self) -> None:
        # the leader's own high-water mark: exact, and cheap to read; a job that ends
        # sooner has only its rusage maxrss, if it exceeds ours (see Exit.max_rss)
        self._usage.add_peak(peak_rss_of(self.pid))

    def _on_exit(self) -> None:
        self._exit = self._group.reap()
        self._proc.returncode = os.waitstatus_to_exitcode(self._exit.status)  # reaped: by us
        # what left the group unseen still carries the token; zombies no longer show it.
        # A young job's processes all have pids allocated after its own: look only at those.
        # Only this worker's: another installation's worker on this host (of the same name)
        # may run a job of the same id, and so of the same token.
        young = time.monotonic() - self._started < YOUNG
        since = self.pid if young else None
        kill_job_processes(self._token, wait=REAP_BOUND, since=since, owner=os.getpid())

    def _make_result(self) -> Result:
        ended = self._exit
        assert ended is not None
        return Result(
            exit_code=ended.code,
            signal=ended.signal,
            error=ended.error,
            cpu_seconds=max(ended.cpu_seconds, self._usage.cpu),
            peak_memory=max(ended.max_rss, self._usage.peak_rss) or None,
            succeeded=ended.code == 0,
        )
