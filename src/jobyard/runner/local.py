"""Runs jobs as processes: commands spawned directly, Python jobs on pre-started children.

The local executor (see :class:`~jobyard.runner.contract.Executor`); the router of
:mod:`jobyard.runner.executors` sends it the jobs whose spec names no other executor.

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

No job sees the worker's secrets: every job process starts from a clean
environment (:mod:`.environment`), and as its type's ``user`` when it names one
(:mod:`.accounts`).

Commands report progress and metrics with the line protocol of
:mod:`jobyard.runner.protocol`; Python jobs get a :class:`~jobyard.context.Context`.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence

from jobyard.models import Job, JobSpec
from jobyard.runner.accounts import Account, AccountError, account
from jobyard.runner.command import start_command
from jobyard.runner.contract import (
    Execution,
    FailedExecution,
    GuardedSink,
    Result,
    Sample,
    Sink,
    spawn_failed,
)
from jobyard.runner.environment import JobEnvironment, seal
from jobyard.runner.pool import Pool
from jobyard.runner.procs import kill_job_processes
from jobyard.runner.python import start_python

__all__ = ["Execution", "Result", "Runner", "Sample", "Sink", "kill_job_processes"]


class Runner:
    """Starts jobs. One per worker; ``close`` it when the worker stops.

    ``python_pool`` children are started ahead for Python jobs, with
    ``python_path`` put in front of their ``sys.path`` and the ``preload``
    modules imported (import your heavy libraries there, once per child).
    Jobs see of our environment only the allowed variables and those ``pass_env``
    names (see :mod:`jobyard.runner.environment`), read once, here.

    A Python job whose type names another ``user`` runs on a child started as that
    user for the job alone (a pool of size 0 per user): an interpreter start per
    job, the price of not sharing a process between users.
    """

    def __init__(
        self,
        *,
        python_pool: int = 2,
        python_path: Sequence[str] = (),
        preload: Sequence[str] = (),
        pass_env: Sequence[str] = (),
    ) -> None:
        seal()  # the worker's /proc/<pid>/environ still holds what its jobs must not see
        self.environment = JobEnvironment(pass_env)
        self.pool = Pool(python_pool, python_path, preload, environ=self.environment.base)
        self._python_path = tuple(python_path)
        self._user_pools: dict[Account, Pool] = {}
        self._lock = threading.Lock()
        self._started: weakref.WeakSet[Execution] = weakref.WeakSet()  # for close()

    def start(
        self,
        job_id: int,
        token: str,
        spec: JobSpec,
        sink: Sink,
        *,
        give_up: threading.Event | None = None,
    ) -> Execution:
        """Start a job. Never raises for a job that cannot start: its Result says why.
        ``give_up`` set ends a Python job's wait for a ready child (it fails to start)."""
        guarded = GuardedSink(sink, job_id)
        try:
            user = None if spec.user is None else account(spec.user)
        except AccountError as exc:
            return FailedExecution(spawn_failed(f"spawn failed: {exc}", 126), guarded)
        if spec.python:
            pool = self.pool if user is None or not user.switch else self._pool_of(user)
            execution = start_python(pool, job_id, token, spec, guarded, user, give_up)
        else:
            execution = start_command(job_id, token, spec, guarded, self.environment, user)
        self._started.add(execution)
        return execution

    def adopt(self, job: Job, token: str, sink: Sink) -> Execution:
        """A local job's processes died with their worker: nothing to follow."""
        error = "spawn failed: a local job's processes died with their worker"
        return FailedExecution(spawn_failed(error, 126), GuardedSink(sink, job.id))

    def _pool_of(self, user: Account) -> Pool:
        """The pool of ``user``'s children: none kept, one started for each job."""
        with self._lock:
            pool = self._user_pools.get(user)
            if pool is None:
                environ = self.environment.with_variables(user.variables())
                pool = Pool(0, self._python_path, (), environ=environ, account=user)
                self._user_pools[user] = pool
            return pool

    def close(self, timeout: float = 5.0) -> None:
        """Kill every job still running and the pools' children, and reap them all.

        A worker stops its jobs (terminate, grace, kill) before; this is the backstop.
        """
        live = [e for e in list(self._started) if e.wait(0) is None]
        for execution in live:
            execution.kill()
        with self._lock:
            pools = [self.pool, *self._user_pools.values()]
        for pool in pools:
            pool.close(timeout)
        deadline = time.monotonic() + timeout
        for execution in live:
            execution.wait(max(deadline - time.monotonic(), 0.0))
