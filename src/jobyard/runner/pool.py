"""A pool of pre-started Python children, so that a Python job never waits for an interpreter.

The pool holds exactly ``size`` children (idle, busy or starting), all started
as soon as the pool is made: one per worker slot, so a job never waits for an
interpreter and no child is started or killed while jobs come and go. A child
that served a job which ended normally goes back to the pool and serves the
next job (the most recently used first: its imports and caches are warm); a
child that died, was killed, or whose job was asked to stop is discarded and
replaced at once, so that a ``clean`` hook waiting for a child gets one soon.
Only when more jobs wait than ``size`` (a pool smaller than the worker's
concurrency, or ``size`` 0) is a child started for the job that waits, and it
is discarded when that job ends.

Children start in the jobs' clean environment (:mod:`jobyard.runner.environment`):
the worker's own variables never reach them. A pool may belong to one user
(:mod:`jobyard.runner.accounts`), whose children it starts as that user.

Every child is spawned by one long-lived keeper thread: a child asks the kernel
for a signal when the thread that spawned it ends (``PR_SET_PDEATHSIG``), and
that thread has to live as long as the pool.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jobyard
from jobyard.child.main import CONFIG_VAR
from jobyard.runner.accounts import Account
from jobyard.runner.handle import ChildHandle

GIVE_UP = 0.1  # seconds between looks at a waiting job's give_up while no child is ready

log = logging.getLogger("jobyard.runner.pool")

RETRY_FIRST, RETRY_MAX = 0.5, 30.0  # back-off when children die before they are ready
# How long a job waits for a child that is alive and still importing its preload. A job
# waits for such a child past its own timeout: a slow preload delays jobs, it does not fail them.
PRELOAD_LIMIT = 600.0


class PoolError(Exception):
    """No child could be had."""


class Pool:
    """Children started in the clean environment ``environ`` (and as ``account``, if given)."""

    def __init__(
        self,
        size: int,
        python_path: Sequence[str],
        preload: Sequence[str],
        *,
        environ: Mapping[bytes, bytes],
        account: Account | None = None,
    ) -> None:
        self.size = size
        self.account = account
        self._env = child_environment(environ, python_path, preload)
        # Jobs wait on ``_cond`` for a child, the keeper on ``_gap`` for one to start: a
        # job's acquire and release wake nobody else (one lock guards both).
        lock = threading.RLock()
        self._cond = threading.Condition(lock)
        self._gap = threading.Condition(lock)
        self._idle: list[ChildHandle] = []  # the last one is handed out first
        self._starting: set[ChildHandle] = set()
        self._busy: set[ChildHandle] = set()
        self._all: set[ChildHandle] = set()  # not yet reaped
        self._waiters = 0
        self._closed = False
        self._failures = 0
        self._retry_at = 0.0
        self.last_failure: str | None = None
        self.spawned = 0  # children started so far
        self._keeper = threading.Thread(target=self._keep, name="jobyard-pool", daemon=True)
        self._keeper.start()

    def acquire(self, timeout: float, give_up: threading.Event | None = None) -> ChildHandle:
        """An idle, ready child, now marked busy.

        Waits for one up to ``timeout`` seconds, and on while a child is still starting
        (importing its preload), up to :data:`PRELOAD_LIMIT` after that child started:
        only when no child is on its way (they die at start) does ``timeout`` fail it.
        ``give_up`` set (the job was killed or handed back meanwhile) ends the wait at
        once, with a :class:`PoolError`.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._waiters += 1
            self._poke_keeper()
            try:
                while not self._idle:
                    if give_up is not None and give_up.is_set():
                        raise PoolError("the job was stopped before a Python child was ready")
                    remaining = max(deadline, self._starting_until()) - time.monotonic()
                    if self._closed or remaining <= 0:
                        raise PoolError(self._why_none())
                    self._cond.wait(remaining if give_up is None else min(remaining, GIVE_UP))
                child = self._idle.pop()
                self._busy.add(child)
                return child
            finally:
                self._waiters -= 1

    def release(self, child: ChildHandle, *, reuse: bool) -> None:
        """A job is done with ``child``: keep it for the next job, or discard it.

        A healthy child is kept. Only when the pool then holds more than ``size``
        children (one was started for a job beyond ``size``) and no job waits is
        one discarded: the idle child used least recently.
        """
        discard: ChildHandle | None = child
        with self._cond:
            self._busy.discard(child)
            if reuse and not self._closed and child.exit is None:
                self._idle.append(child)
                surplus = self._count() > self.size and self._waiters == 0
                discard = self._idle.pop(0) if surplus else None
            self._cond.notify_all()  # a job may wait for a child
            self._poke_keeper()  # one not reused leaves a gap
        if discard is not None:
            discard.kill()  # its reader thread reaps it and calls _gone

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {
                "idle": len(self._idle),
                "busy": len(self._busy),
                "starting": len(self._starting),
            }

    def idle_pids(self) -> list[int]:
        """The idle children, the next one to serve a job last."""
        with self._cond:
            return [child.pid for child in self._idle]

    def wait_ready(self, timeout: float) -> bool:
        """Wait until ``size`` children are ready (idle or busy); False after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._idle) + len(self._busy) < self.size:
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Kill every child (idle or not) and reap them."""
        with self._cond:
            self._closed = True
            children = list(self._all)
            self._cond.notify_all()
            self._gap.notify()
        for child in children:
            child.kill()
        for child in children:
            child.join(timeout)
        self._keeper.join(timeout)

    # -- keeper thread ------------------------------------------------------------
    def _keep(self) -> None:
        with self._cond:
            while not self._closed:
                delay = self._retry_at - time.monotonic()
                if self._missing() <= 0 or delay > 0:
                    self._gap.wait(delay if delay > 0 else None)
                    continue
                self._cond.release()
                try:
                    child = self._spawn()
                finally:
                    self._cond.acquire()
                if child is not None:
                    self.spawned += 1
                    self._adopt(child)

    def _poke_keeper(self) -> None:
        """Under the lock: wake the keeper if a child is to be started."""
        if self._missing() > 0:
            self._gap.notify()

    def _starting_until(self) -> float:
        """Under the lock: until when a child that is starting may still become ready."""
        return max((child.born + PRELOAD_LIMIT for child in self._starting), default=0.0)

    def _count(self) -> int:
        """The children the pool holds: every one not discarded yet."""
        return len(self._idle) + len(self._starting) + len(self._busy)

    def _missing(self) -> int:
        """How many children to start: up to ``size``, or one for each job that waits."""
        return max(self.size, len(self._busy) + self._waiters) - self._count()

    def _spawn(self) -> ChildHandle | None:
        try:
            return ChildHandle.spawn(self._env, self._on_message, self._gone, self.account)
        except OSError as exc:
            log.error("cannot start a Python child", extra={"error": str(exc)})
            with self._cond:
                self._failed(str(exc))
            return None

    def _adopt(self, child: ChildHandle) -> None:
        self._starting.add(child)
        self._all.add(child)
        child.start_reading()
        if self._closed:
            child.kill()

    def _on_message(self, child: ChildHandle, message: dict[str, Any]) -> None:
        if message.get("op") != "ready":
            log.debug("message from an idle pool child", extra={"pid": child.pid, **message})
            return
        for error in message.get("errors") or []:
            log.warning("preload failed in a Python child", extra={"error": error})
        with self._cond:
            child.ready = True
            self._failures = 0
            if child in self._starting:
                self._starting.discard(child)
                self._idle.insert(0, child)  # after the warm ones, which serve first
                self._cond.notify_all()

    def _gone(self, child: ChildHandle) -> None:
        with self._cond:
            if child in self._starting and not child.ready:
                ended = child.exit.error if child.exit else None
                self._failed(child.recent[-1] if child.recent else ended or "exited")
            self._starting.discard(child)
            self._busy.discard(child)
            self._all.discard(child)
            if child in self._idle:
                self._idle.remove(child)
            self._cond.notify_all()
            self._poke_keeper()

    def _failed(self, why: str) -> None:
        self.last_failure = why
        self._failures += 1
        self._retry_at = time.monotonic() + min(RETRY_FIRST * 2 ** (self._failures - 1), RETRY_MAX)

    def _why_none(self) -> str:
        if self._closed:
            return "the runner is closed"
        last = f" (last child failure: {self.last_failure})" if self.last_failure else ""
        if self._starting:
            return f"no Python child finished its preload within {PRELOAD_LIMIT:g} s{last}"
        return f"no Python child process became ready{last}"


def child_environment(
    environ: Mapping[bytes, bytes], python_path: Sequence[str], preload: Sequence[str]
) -> dict[bytes, bytes]:
    """A job's clean environment, plus what a child needs to import us and the jobs
    (our directory, the worker's ``PYTHONPATH``).

    The child takes both variables out before its first job (see
    :mod:`jobyard.child.main`), so a job and its subprocesses see ``environ`` only.
    """
    here = str(Path(jobyard.__file__).resolve().parent.parent)  # the directory holding it
    original = environ.get(b"PYTHONPATH")  # only there when pass_env names it
    # The worker's own PYTHONPATH is where it finds code, not a secret: the child
    # imports job modules from it too; the job's subprocesses see it per pass_env.
    worker_path = os.environ.get("PYTHONPATH")
    paths = [here, worker_path] if worker_path else [here]
    config = {
        "path": list(python_path),
        "preload": list(preload),
        "pythonpath": None if original is None else os.fsdecode(original),
    }
    extra = {"PYTHONPATH": os.pathsep.join(paths), CONFIG_VAR: json.dumps(config)}
    return dict(environ) | {os.fsencode(k): os.fsencode(v) for k, v in extra.items()}
