"""Runs jobs as processes: commands spawned directly, Python jobs on pre-started children.

The worker calls :meth:`Runner.start` for a claimed job and then drives the
returned :class:`Execution` from one thread: ``wait(0.1)`` in a loop, and
``pause``/``resume``/``terminate``/``kill`` as intents arrive. Output, progress
and metrics reach the worker's :class:`Sink` from the runner's reader threads.

Every job is the leader of its own process group (pgid == pid): pause is
SIGSTOP to the group, resume SIGCONT, terminate SIGCONT + SIGTERM, kill SIGKILL
to the group and to every descendant seen (also those that called ``setsid``).
When a job ends for any reason, whatever is left of its group is killed before
its Result is handed out, and its output is drained (for a short, bounded time
if a process that escaped the group still holds it open).

Commands report progress and metrics with the line protocol of
:mod:`jobyard.runner.protocol`; Python jobs get a :class:`~jobyard.context.Context`.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence

from jobyard.models import JobSpec
from jobyard.runner.command import start_command
from jobyard.runner.contract import Execution, GuardedSink, Result, Sample, Sink
from jobyard.runner.pool import Pool
from jobyard.runner.procs import kill_job_processes
from jobyard.runner.python import start_python

__all__ = ["Execution", "Result", "Runner", "Sample", "Sink", "kill_job_processes"]


class Runner:
    """Starts jobs. One per worker; ``close`` it when the worker stops.

    ``python_pool`` children are started ahead for Python jobs, with
    ``python_path`` put in front of their ``sys.path`` and the ``preload``
    modules imported (import your heavy libraries there, once per child).
    """

    def __init__(
        self,
        *,
        python_pool: int = 2,
        python_path: Sequence[str] = (),
        preload: Sequence[str] = (),
    ) -> None:
        self.pool = Pool(python_pool, python_path, preload)
        self._started: weakref.WeakSet[Execution] = weakref.WeakSet()  # for close()

    def start(self, job_id: int, token: str, spec: JobSpec, sink: Sink) -> Execution:
        """Start a job. Never raises for a job that cannot start: its Result says why."""
        guarded = GuardedSink(sink, job_id)
        if spec.python:
            execution = start_python(self.pool, job_id, token, spec, guarded)
        else:
            execution = start_command(job_id, token, spec, guarded)
        self._started.add(execution)
        return execution

    def close(self, timeout: float = 5.0) -> None:
        """Kill every job still running and the pool's children, and reap them all.

        A worker stops its jobs (terminate, grace, kill) before; this is the backstop.
        """
        live = [e for e in list(self._started) if e.wait(0) is None]
        for execution in live:
            execution.kill()
        self.pool.close(timeout)
        deadline = time.monotonic() + timeout
        for execution in live:
            execution.wait(max(deadline - time.monotonic(), 0.0))
