"""The runner's contract: what a worker hands in (a :class:`Sink`), what it gets back.

Kept apart from :mod:`jobyard.runner.local` so that the execution modules can share
these types without importing the runner itself; :mod:`jobyard.runner.local`
re-exports them.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import threading

    from jobyard.models import Job, JobSpec

log = logging.getLogger("jobyard.runner.local")


class Sink(Protocol):
    """Receives what a running job reports. Called from the runner's reader threads."""

    def log(self, stream: str, line: str) -> None:
        """One line (without its newline) on ``stdout``, ``stderr`` or ``system``."""

    def progress(self, fraction: float | None, message: str | None) -> None: ...

    def metric(self, name: str, value: float) -> None: ...

    def details(self, data: dict[str, Any]) -> None:
        """What a class job's ``details()`` returned."""

    def output(self, nbytes: int) -> None:
        """Raw bytes the job wrote to stdout and stderr (all of them, protocol lines too)."""

    def ended(self) -> None:
        """The job is over and its output drained: ``wait`` returns its Result now."""

    def record(self, data: dict[str, Any]) -> bool:
        """Store ``data`` as the job's details now, before returning: an executor's record
        of a job that must not run unrecorded. False when it could not be stored."""

    def controlled(self, control: str, error: str | None) -> None:
        """A deferred ``pause`` or ``resume`` (see :meth:`Execution.pause`) took effect,
        or was refused (``error`` says why: the job then goes on as it was)."""

    def together(self) -> AbstractContextManager[object]:
        """What is handed in while this is held is stored in one batch: lines with the
        details that say how far they go, so that a crash keeps both or neither."""


@dataclass(frozen=True)
class Sample:
    """Resource use of a job's whole process tree at one moment."""

    rss: int  # bytes, summed over the tree now
    cpu_seconds: float  # user + system so far, reaped children included where known


@dataclass(frozen=True)
class Result:
    """How a job's process ended; returned once its output was fully drained."""

    exit_code: int | None  # None when ended by a signal (or a Python job raised)
    signal: int | None
    error: str | None  # short text for people; details went to the log
    cpu_seconds: float | None
    peak_memory: int | None  # bytes: the best known peak
    succeeded: bool
    spawn_failed: bool = False  # no process was started (bad command, directory, child)
    # why, when the executor knows better than the exit status (Slurm's TIMEOUT, NODE_FAIL…):
    # one of the job's reasons (outcomes.Reason) or an executor's own word
    reason: str | None = None


class Execution(Protocol):
    """A started job. Every method is called from the one thread that drives the job."""

    @property
    def pid(self) -> int:
        """The process-group leader (its pgid equals its pid); 0 if nothing was started."""

    def pause(self) -> bool:
        """Stop the job's processes. True: done now; False: not now, either because another
        thread applies it and reports the outcome through :meth:`Sink.controlled` (a
        cluster may refuse it), or because the job has ended (its end comes next)."""

    def resume(self) -> bool:
        """Continue the job's processes; True or False as for :meth:`pause`."""

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def sample(self) -> Sample: ...

    def wait(self, timeout: float) -> Result | None:
        """The Result once the job ended and its output was drained, else None after ``timeout``."""


class Executor(Protocol):
    """Where jobs run: the local host's processes, or a cluster scheduler (Slurm).

    ``start`` runs a claimed job and returns its :class:`Execution`, whose methods
    pause, resume, terminate (the grace starts), kill, sample resources and wait
    for the end (output streamed to the sink, files cleaned up before the Result).
    ``adopt`` follows a job that a worker which died left running, as attempt
    ``token`` of the adopting worker — only an executor whose jobs outlive the
    worker can (the others return an execution that already failed). ``close``
    stops what the executor keeps running for its jobs.
    """

    def start(
        self,
        job_id: int,
        token: str,
        spec: JobSpec,
        sink: Sink,
        *,
        give_up: threading.Event | None = None,
    ) -> Execution:
        """Start a job; never raises for a job that cannot start (its Result says why).
        ``give_up`` set while the start waits (for a Python child) ends the wait: the job
        was killed or handed back meanwhile."""
        ...

    def adopt(self, job: Job, token: str, sink: Sink) -> Execution:
        """Follow the live ``job`` that another worker started, from where its log stopped."""
        ...

    def close(self, timeout: float = 5.0) -> None: ...


class GuardedSink:
    """Forwards to the worker's sink; an exception there is logged, never raised.

    Our reader threads must survive a failing sink, or the job would never
    report its end.
    """

    def __init__(self, sink: Sink, job_id: int) -> None:
        self._sink = sink
        self._job_id = job_id

    def log(self, stream: str, line: str) -> None:
        self._call(self._sink.log, stream, line)

    def progress(self, fraction: float | None, message: str | None) -> None:
        self._call(self._sink.progress, fraction, message)

    def metric(self, name: str, value: float) -> None:
        self._call(self._sink.metric, name, value)

    def details(self, data: dict[str, Any]) -> None:
        self._call(self._sink.details, data)

    def output(self, nbytes: int) -> None:
        self._call(self._sink.output, nbytes)

    def ended(self) -> None:
        self._call(self._sink.ended)

    def controlled(self, control: str, error: str | None) -> None:
        self._call(self._sink.controlled, control, error)

    def together(self) -> AbstractContextManager[object]:
        return self._sink.together()

    def record(self, data: dict[str, Any]) -> bool:
        try:
            return self._sink.record(data)
        except Exception:
            log.exception("job sink failed to record", extra={"job": self._job_id})
            return False

    def _call(self, method: Any, *args: Any) -> None:
        try:
            method(*args)
        except Exception:
            log.exception("job sink failed", extra={"job": self._job_id})


class FailedExecution:
    """An execution that never started a process: its Result is known at once."""

    pid = 0

    def __init__(self, result: Result, sink: Sink) -> None:
        self._result = result
        if result.error:
            sink.log("system", result.error)

    def pause(self) -> bool:
        return True

    def resume(self) -> bool:
        return True

    def terminate(self) -> None:
        pass

    def kill(self) -> None:
        pass

    def sample(self) -> Sample:
        return Sample(rss=0, cpu_seconds=0.0)

    def wait(self, timeout: float) -> Result | None:
        return self._result


def spawn_failed(error: str, exit_code: int) -> Result:
    """The Result of a job that could not start (no process, no resources used)."""
    return Result(exit_code, None, error, None, None, succeeded=False, spawn_failed=True)
