"""Python jobs: one job on one pool child, from the parent's side.

The job's Result is known when the child reported ``done`` and both of its
output streams reached the job's marker (every line has arrived), or when the
child died. After a stop or kill of a class job, its ``clean`` hook runs on
another pool child before the Result is handed out (``wait`` returns None
meanwhile; ``kill`` then aborts the clean).
"""

from __future__ import annotations

import math
import secrets
import signal
import threading
import time
from typing import Any

from jobyard.models import JobSpec
from jobyard.runner.accounts import Account
from jobyard.runner.contract import Execution, FailedExecution, Result, Sample, Sink, spawn_failed
from jobyard.runner.environment import identity
from jobyard.runner.handle import ChildHandle
from jobyard.runner.output import emit_stdout
from jobyard.runner.pool import Pool, PoolError
from jobyard.runner.procs import Exit, Usage

ACQUIRE_TIMEOUT = 30.0  # waiting for a ready child (only long when children cannot start)
PAUSE_HOOK_WAIT = 2.0  # a class job's pause() gets this long before SIGSTOP
DETAILS_INTERVAL = 2.0
CLEAN_TIMEOUT = 60.0


def start_python(
    pool: Pool,
    job_id: int,
    token: str,
    spec: JobSpec,
    sink: Sink,
    account: Account | None = None,
    give_up: threading.Event | None = None,
) -> Execution:
    """Run the job on a child of ``pool``, whose environment is already the job's clean
    one: the child adds the type's variables, the job's identity and ``account``'s.
    ``give_up``: see :meth:`Pool.acquire`."""
    person = {} if account is None else account.variables()
    request = {
        "op": "run",
        "job_id": job_id,
        "target": spec.python,
        "args": spec.args,
        "env": person | spec.env | identity(job_id, token),
        "cwd": spec.cwd,
    }
    try:
        child = pool.acquire(ACQUIRE_TIMEOUT, give_up)
    except PoolError as exc:
        return FailedExecution(spawn_failed(f"spawn failed: {exc}", 126), sink)
    return PythonExecution(pool, child, request, sink)


class PythonExecution:
    """A Python job running on a pool child (or its ``clean`` hook, when ``cleaning``)."""

    def __init__(
        self,
        pool: Pool,
        child: ChildHandle,
        request: dict[str, Any],
        sink: Sink,
        *,
        cleaning: bool = False,
    ) -> None:
        self.pid = child.pid
        self._pool, self._child, self._sink = pool, child, sink
        self._request = request | {"marker": f"\x1ejobyard-end {secrets.token_hex(8)}\n"}
        self._cleaning = cleaning
        self._usage = Usage(cpu_baseline=child.cpu_total)  # no look at /proc to start a job
        self._lock = threading.Lock()
        self._kind: str | None = None
        self._hooks: frozenset[str] = frozenset()
        self._done: dict[str, Any] | None = None
        self._markers: set[str] = set()
        self._exit: Exit | None = None
        self._released = False  # the child is no longer ours to signal
        self._ended = False
        self._stop_asked = self._kill_asked = self._abort_clean = False
        self._paused = False
        self._pause_seq = 0
        self._pause_ack = threading.Event()
        self._pause_over = False  # the child said the job's code ended while its pause hook ran
        self._details_at = time.monotonic() + DETAILS_INTERVAL
        self._details_asked: float | None = None
        self._cleaner: PythonExecution | None = None
        self._result: Result | None = None
        self._finished = threading.Event()
        child.attach(self, self._request["marker"])
        if not child.send(self._request):
            child.kill()  # it will be reaped and reported through on_exit

    # -- control, from the job's thread -------------------------------------------
    def pause(self) -> bool:
        with self._lock:
            if self._released or self._ended:
                return False  # the job is over: nothing to stop, and its end comes next
            self._pause_seq += 1
            self._pause_ack.clear()
            self._pause_over = False
            seq = self._pause_seq
            ask = {"op": "pause", "seq": seq, "marker": self._request["marker"]}
            asked = "pause" in self._hooks and self._child.send(ask)
        if asked:
            self._pause_ack.wait(PAUSE_HOOK_WAIT)
        with self._lock:
            # Its code ended while the hook ran: stopped now, it would stay paused, ended.
            if self._released or self._ended or self._done is not None or self._pause_over:
                return False
            self._child.group.stop()
            self._paused = True
        return True

    def resume(self) -> bool:
        with self._lock:
            if self._released:
                return True
            self._child.group.cont()
            self._paused = False
            if "resume" in self._hooks:
                self._child.send({"op": "resume"})
        return True

    def terminate(self) -> None:
        with self._lock:
            if self._released or self._ended:
                return
            self._stop_asked = True
            self._child.group.cont()
            self._child.group.signal(signal.SIGTERM)

    def kill(self) -> None:
        with self._lock:
            if self._ended:
                self._abort_clean = True
            else:
                self._kill_asked = True
            cleaner = self._cleaner
            if not self._released:
                self._child.kill()
        if cleaner is not None:
            cleaner.kill()

    def sample(self) -> Sample:
        with self._lock:
            if self._released or self._ended:
                return Sample(0, self._usage.cpu)
            return Sample(*self._usage.add(*self._child.group.sample()))

    def wait(self, timeout: float) -> Result | None:
        self._ask_details()
        self._finished.wait(timeout)
        return self._result

    # -- ChildListener, from the child's reader thread ----------------------------
    def on_output(self, nbytes: int) -> None:
        self._sink.output(nbytes)

    def on_line(self, stream: str, line: str) -> None:
        if stream == "stdout":
            emit_stdout(self._sink, line)
        else:
            self._sink.log(stream, line)

    def on_marker(self, stream: str) -> None:
        with self._lock:
            self._markers.add(stream)
            self._check()

    def on_message(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "progress":
            self._sink.progress(message.get("fraction"), message.get("message"))
        elif op == "metric":
            if math.isfinite(value := float(message["value"])):  # the child sends no other
                self._sink.metric(str(message["name"]), value)
        elif op == "details":
            self._details_asked = None
            self._sink.details(dict(message.get("data") or {}))
        elif op == "started":
            self._kind, self._hooks = message.get("kind"), frozenset(message.get("hooks", ()))
        elif op == "paused" and message.get("seq") == self._pause_seq:
            self._pause_over = bool(message.get("over"))
            self._pause_ack.set()
        elif op == "done":
            with self._lock:
                self._done = message
                self._check()

    def on_exit(self, ended: Exit) -> None:
        with self._lock:
            self._exit = ended
            self._released = True
            self._check()

    # -- the end --------------------------------------------------------------------
    def _check(self) -> None:
        """Under the lock: has the job ended, with all its output in?"""
        if self._ended:
            return
        if self._exit is None:
            if self._done is None or len(self._markers) < 2:
                return
            if not self._reusable():
                self._child.kill()  # the Result waits until it is reaped
                return
            self._released = True
            self._child.detach()
            self._pool.release(self._child, reuse=True)
        else:
            self._pool.release(self._child, reuse=False)
        self._ended = True
        result = self._make_result()
        if self._needs_clean():
            threading.Thread(target=self._clean, args=(result,), daemon=True).start()
        else:
            self._finish(result)

    def _reusable(self) -> bool:
        done = self._done or {}
        asked = self._stop_asked or self._kill_asked or self._paused
        return not (asked or done.get("signal") or done.get("retire"))

    def _needs_clean(self) -> bool:
        asked = self._stop_asked or self._kill_asked
        return asked and not self._cleaning and (self._kind is None or "clean" in self._hooks)

    def _make_result(self) -> Result:
        usage, done, ended = self._usage, self._done, self._exit
        if done is not None:
            return Result(
                exit_code=done.get("exit_code"),
                signal=done.get("signal"),
                error=done.get("error"),
                cpu_seconds=max(float(done.get("cpu", 0.0)), usage.cpu),
                peak_memory=max(int(done.get("peak", 0)), usage.peak_rss) or None,
                succeeded=bool(done.get("ok")),
            )
        assert ended is not None
        return Result(
            exit_code=ended.code,
            signal=ended.signal,
            error=ended.error or "the Python child exited before the job ended",
            cpu_seconds=max(ended.cpu_seconds - usage.baseline, usage.cpu),
            peak_memory=usage.peak_rss or None,
            succeeded=False,
        )

    def _finish(self, result: Result) -> None:
        self._result = result
        self._finished.set()
        self._sink.ended()

    def _clean(self, result: Result) -> None:
        """Run the class's ``clean`` on a fresh child, then hand out the job's Result."""
        self._sink.log("system", "running clean()")
        try:
            child = self._pool.acquire(ACQUIRE_TIMEOUT)
        except PoolError as exc:
            self._sink.log("system", f"clean() could not run: {exc}")
            self._finish(result)
            return
        request = self._request | {"clean": True}
        cleaner = PythonExecution(self._pool, child, request, self._sink, cleaning=True)
        with self._lock:
            self._cleaner = cleaner
            abort = self._abort_clean
        if abort:
            cleaner.kill()
        deadline = time.monotonic() + CLEAN_TIMEOUT
        while (outcome := cleaner.wait(0.5)) is None:
            if time.monotonic() > deadline:
                self._sink.log("system", f"clean() still running after {CLEAN_TIMEOUT:g} s: killed")
                cleaner.kill()
                deadline = float("inf")
        if not outcome.succeeded:
            self._sink.log("system", f"clean() failed: {outcome.error}")
        self._finish(result)

    def _ask_details(self) -> None:
        if "details" not in self._hooks or self._paused or self._ended or self._cleaning:
            return
        now = time.monotonic()
        if self._details_asked is not None and now - self._details_asked < 10 * DETAILS_INTERVAL:
            return  # one question at a time, unless the answer got lost
        if now >= self._details_at:
            self._details_at, self._details_asked = now + DETAILS_INTERVAL, now
            self._child.send({"op": "details"})
