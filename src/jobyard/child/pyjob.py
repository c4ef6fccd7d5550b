"""Inside a pool child: run one Python job, a function or a class, and say how it ended.

Function jobs (``module:function``) are called with the job's arguments as
keywords, and with the :class:`~jobyard.context.Context` when their first
parameter is named ``ctx`` or ``context`` (first, or by name when it is
keyword-only). An ``async def`` function is run to its end; a generator fails.
A returned dict reports its numbers (int or float, not bool) as metrics;
anything else returned is ignored. A process the job forks that comes back
here exits as a script's fork would: only the job's own process tells its end.

Class jobs (``module:Class``) are instantiated without arguments; ``start(ctx,
**args)`` is the body. Optional hooks, called from a thread of the child's
(never the main thread, which runs ``start``): ``pause(ctx)`` before the
process is stopped, ``resume(ctx)`` after it continues, ``stop(ctx)`` when the
job is asked to stop, ``details()`` (a JSON-able dict, polled about every 2 s
and once at the end) and ``clean(ctx, **args)``, run in a fresh child after the
job was stopped or killed, to roll back. ``clean`` runs on an object of its own,
which knows nothing of the run: it is never asked for ``details()``, so the job
keeps the last details its run reported.

A stop request (SIGTERM) sets ``ctx.stopping``; a class job gets its ``stop``
hook; a function that has read ``ctx.stopping`` is left to return, and one that
never has gets :class:`Stopped` (a ``SystemExit``) raised in the main thread so
that it unwinds through its ``finally`` blocks.
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import inspect
import json
import math
import os
import signal
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from jobyard.context import Context
from jobyard.text import shortened

HOOKS = ("pause", "resume", "stop", "details", "clean")
Send = Callable[[dict[str, Any]], None]


class Stopped(SystemExit):
    """Raised in a function job's main thread when the job is asked to stop."""


def resolve(target: str) -> Any:
    """``package.module:attr.sub`` → the object."""
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def context_parameter(func: Callable[..., Any]) -> inspect.Parameter | None:
    """A function job's first parameter when it takes the context: named ``ctx`` or
    ``context``, positional or keyword-only (``def f(*, ctx, n)``), as ``@jobyard.job``
    leaves it out of the params. Remembered per function."""
    try:
        return _CONTEXT_PARAMETER[func]
    except (KeyError, TypeError):  # TypeError: an unhashable callable
        pass
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    found = params[0] if params and params[0].name in ("ctx", "context") else None
    if found is not None and found.kind in (found.VAR_POSITIONAL, found.VAR_KEYWORD):
        found = None
    with suppress(TypeError):
        _CONTEXT_PARAMETER[func] = found
    return found


_CONTEXT_PARAMETER: weakref.WeakKeyDictionary[Any, inspect.Parameter | None] = (
    weakref.WeakKeyDictionary()
)


def deaf_to_stop() -> None:
    """Leave SIGTERM to the main thread: a thread of the child's own blocks it.

    A stop is SIGTERM to the child's process; the kernel gives such a signal to any
    thread that does not block it. Taken by another thread, Python only marks it, and
    its handler (which raises where the job runs) waits until the main thread runs
    Python again: a job in ``time.sleep`` or a read slept on, and was killed at the end
    of its grace without its ``finally``. A paused job's stop met this one time in four:
    every thread was stopped, and the first to wake took the signal.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


class HookThread:
    """The hooks the parent asks for while a job runs (pause, resume, details), called one
    after the other in a thread of their own: a slow hook holds up neither the child's
    control thread (the next job's start, the other commands) nor, once its job ended,
    the next job, as the child of a hook that did not return is not used again."""

    def __init__(self) -> None:
        self._calls: collections.deque[Callable[[], None]] = collections.deque()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._running = self._closed = False

    def put(self, call: Callable[[], None]) -> bool:
        """Call ``call`` after those asked before; False once the job is over."""
        with self._lock:
            if self._closed:
                return False
            self._calls.append(call)
            if not self._running:
                self._running = True
                thread = threading.Thread(target=self._drain, name="jobyard-hooks", daemon=True)
                self._threads.append(thread)
                thread.start()
        return True

    def close(self, grace: float) -> bool:
        """No more calls; whether every one asked returned (waiting up to ``grace``)."""
        with self._lock:
            self._closed = True
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._calls:
                    self._running = False
                    return
                call = self._calls.popleft()
            try:
                call()
            except BaseException as exc:  # the next hooks are called all the same
                print_traceback(exc)


class PyJob:
    """One run of a job (or of its ``clean``) inside the child."""

    def __init__(self, request: dict[str, Any], send: Send) -> None:
        self.request = request
        self.args: dict[str, Any] = request.get("args") or {}
        self.instance: Any = None
        self.hooks: list[str] = []
        self._send = send
        self._stop = threading.Event()
        self.ctx = Context(int(request["job_id"]), self._send_from_job, self._stop)
        self._in_body = False
        self._shield = 0  # >0 while the main thread writes a message: do not raise mid-write
        self._stop_deferred = False
        self._stopper: threading.Thread | None = None
        self._details_lock = threading.Lock()
        self._details_final = False
        self._hook_thread = HookThread()

    def execute(self) -> dict[str, Any]:
        """Run the body; the fields of the ``done`` message that describe its end.

        A process the job forked (``os.fork``) that comes back here, by returning, by
        ``sys.exit`` or by an exception, exits as a script's fork would: only the job's
        own process tells the job's end (a fork's would end it early, and its answer
        would be taken for the next job's).
        """
        own = os.getpid()
        try:
            with self._environment():
                body = self._prepare()
                value = self._call(body) if body is not None else None
        except Stopped:
            _exit_if_forked(own, 143)
            return _ended(signal=15, error="stopped on request (SIGTERM)")
        except SystemExit as exc:
            outcome = _exit_outcome(exc)
            _exit_if_forked(own, outcome["exit_code"] & 0xFF)
            return outcome
        except BaseException as exc:
            print_traceback(exc)
            _exit_if_forked(own, 1)
            return _ended(error=_describe(exc))
        _exit_if_forked(own, 0)
        self._report(value)
        return _ended(ok=True, exit_code=0)

    def ask(self, name: str, then: Callable[[], None] | None = None) -> bool:
        """From the control thread: call hook ``name`` (``details`` sends its answer) in
        the hook thread, then ``then``; False once the job is over."""

        def call() -> None:
            if name == "details":
                self.send_details()
            else:
                self.hook(name)
            if then is not None:
                then()

        return self._hook_thread.put(call)

    def end_hooks(self, grace: float) -> bool:
        """At the job's end: no more hooks; whether those asked all returned."""
        return self._hook_thread.close(grace)

    def hook(self, name: str) -> None:
        """Call a class job's hook (from the hook thread, or the stop hook's); its failure
        is only logged."""
        method = getattr(self.instance, name, None) if name in self.hooks else None
        if method is None:
            return
        try:
            method(self.ctx)
        except Exception as exc:
            print_traceback(exc)

    def send_details(self, *, final: bool = False) -> None:
        """Send what ``details()`` returns; once ``final`` was sent, nothing more."""
        if "details" not in self.hooks or self.request.get("clean"):
            return  # a clean's fresh object would report details of a run it never did
        with self._details_lock:  # a late answer to a poll must not follow the final one
            if self._details_final:
                return
            self._details_final = final
            try:
                data = self.instance.details()
            except Exception as exc:
                print_traceback(exc)
                return
            if not isinstance(data, dict):
                return
            try:
                size = len(json.dumps(data, default=str, allow_nan=False))
            except ValueError as exc:  # NaN or an infinity (no JSON holds them), a cycle
                to_stderr(f"details() returned what JSON cannot hold ({exc}): not kept\n")
                return
            if size > DETAILS_MAX:
                to_stderr(
                    f"details() returned {size} bytes of JSON, over {DETAILS_MAX}: not kept\n"
                )
                return
            self._send({"op": "details", "data": data})

    def request_stop(self) -> None:
        """Called by the SIGTERM handler, in the main thread."""
        self._stop.set()
        if self.instance is not None:
            if self._stopper is None:
                # Started here, in the main thread: SIGTERM as the job's own threads have it,
                # so that a process the hook starts hears a stop (the pause and resume
                # hooks' thread, started by the control thread, is deaf to it: deaf_to_stop).
                self._stopper = threading.Thread(target=self.hook, args=("stop",), daemon=True)
                self._stopper.start()
        elif self._in_body and not self.ctx.watched:  # else it returns on its own
            if self._shield:
                self._stop_deferred = True
            else:
                raise Stopped(143)

    def _prepare(self) -> Callable[[], Any] | None:
        target = resolve(self.request["target"])
        cleaning = bool(self.request.get("clean"))
        if inspect.isclass(target):
            self.instance = target()
            self.hooks = [h for h in HOOKS if callable(getattr(self.instance, h, None))]
            self._send({"op": "started", "kind": "class", "hooks": self.hooks})
            if cleaning:
                return self._clean_body() if "clean" in self.hooks else None
            return lambda: self.instance.start(self.ctx, **self.args)
        self._send({"op": "started", "kind": "function", "hooks": []})
        if cleaning:
            return None
        takes = context_parameter(target)
        if takes is None:
            return lambda: target(**self.args)
        if takes.kind is takes.KEYWORD_ONLY:
            return lambda: target(**{takes.name: self.ctx}, **self.args)
        return lambda: target(self.ctx, **self.args)

    def _clean_body(self) -> Callable[[], Any]:
        return lambda: self.instance.clean(self.ctx, **self.args)

    def _call(self, body: Callable[[], Any]) -> Any:
        self._in_body = True
        try:
            value = body()
            if inspect.iscoroutine(value):  # an ``async def`` job: run to its end
                return asyncio.run(value)
            if inspect.isgenerator(value) or inspect.isasyncgen(value):
                raise TypeError(
                    "the job's function is a generator (it has yield): "
                    "a job is a plain function or an async one"
                )
            return value
        finally:
            self._in_body = False
            if self._stopper is not None:
                self._stopper.join()  # the job has ended when its stop() hook returned too

    def _report(self, value: Any) -> None:
        """A returned dict's numbers as metrics; a number no metric can hold (10**400,
        NaN) is left out with a line on stderr: the job returned, and succeeds."""
        if not isinstance(value, dict):
            return
        for name, number in value.items():
            if not isinstance(number, int | float) or isinstance(number, bool):
                continue
            if (finite := finite_metric(str(name), number)) is not None:
                self._send({"op": "metric", "name": str(name), "value": finite})

    def _send_from_job(self, message: dict[str, Any]) -> None:
        if message.get("op") == "metric":  # ctx.metric's: a value no metric holds is not sent
            value = finite_metric(message["name"], message["value"])
            if value is None:
                return
            message = message | {"value": value}
        if threading.current_thread() is not threading.main_thread():
            self._send(message)  # a stop is raised in the main thread only
            return
        self._shield += 1
        try:
            self._send(message)
        finally:
            self._shield -= 1
        if self._stop_deferred and not self._shield and self._in_body:
            self._stop_deferred = False
            raise Stopped(143)

    @contextmanager
    def _environment(self) -> Iterator[None]:
        """The job's variables and working directory, undone afterwards for the next job.

        A ``TZ`` among them is the job's local time too (``time.tzset``), and the
        child's own again after the job.

        Only the job's own variables are set and put back, unless the job changed
        others too: then the whole environment is restored (``os.environ.clear()``
        alone costs more than a no-op job).
        """
        env: dict[str, str] = self.request.get("env") or {}
        saved_cwd, before = os.getcwd(), _environ_data().copy()
        try:
            os.environ.update(env)
            if "TZ" in env:
                time.tzset()  # the local time of the job's TZ, as a process started with it
            expected = _environ_data().copy()
            if self.request.get("cwd"):
                os.chdir(self.request["cwd"])
            yield
        finally:
            os.chdir(saved_cwd)
            job_tz = os.environ.get("TZ")
            if _environ_data() == expected:
                for name in env:
                    _restore_variable(name, before)
            else:
                os.environ.clear()
                os.environ.update({os.fsdecode(k): os.fsdecode(v) for k, v in before.items()})
            if "TZ" in env or job_tz != os.environ.get("TZ"):
                time.tzset()  # the next job's local time is the child's again


def _environ_data() -> dict[bytes, bytes]:
    """``os.environ`` as CPython keeps it (encoded): compared and copied at C speed."""
    data: dict[bytes, bytes] = os.environ._data  # type: ignore[attr-defined]
    return data


def _restore_variable(name: str, before: dict[bytes, bytes]) -> None:
    value = before.get(os.fsencode(name))
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = os.fsdecode(value)


def _ended(
    *,
    ok: bool = False,
    exit_code: int | None = None,
    signal: int | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {"ok": ok, "exit_code": exit_code, "signal": signal, "error": error}


def _exit_outcome(exc: SystemExit) -> dict[str, Any]:
    """``sys.exit()`` in a job ends it like a script's exit status would."""
    code = exc.code
    if code is None or code == 0:
        return _ended(ok=True, exit_code=0)
    if isinstance(code, int):
        return _ended(exit_code=code, error=f"exit code {code}")
    print(code, file=sys.stderr, flush=True)
    return _ended(exit_code=1, error=f"SystemExit: {code}")


ERROR_MAX = 4096  # characters of an exception's text kept as the job's error (the log has it all)
DETAILS_MAX = 1 << 20  # bytes of details() as JSON kept; more is dropped, with a line saying so


def _describe(exc: BaseException) -> str:
    text = str(exc)
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return shortened(text, ERROR_MAX)


def print_traceback(exc: BaseException) -> None:
    """The traceback on stderr (fd 2, after what was printed), without our own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    to_stderr("".join(traceback.format_exception(type(exc), exc, tb)))


def finite_metric(name: str, value: float) -> float | None:
    """``value`` as a metric's float; None, with a line on stderr, when it is no finite
    number (JSON, and every database's JSON, has no NaN nor infinity)."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if math.isfinite(number):
        return number
    to_stderr(f"metric {name!r} not kept: {value!r:.40} is no finite number\n")
    return None


def to_stderr(text: str) -> None:
    """``text`` on fd 2, after what the job printed."""
    flush_stdio()
    write_all(2, text.encode(errors="replace"))


def flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            with suppress(OSError, ValueError):
                stream.flush()


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _exit_if_forked(own: int, status: int) -> None:
    """Exit with ``status`` at once unless this is the process ``own`` (the job's)."""
    if os.getpid() != own:
        with suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)
