"""A pre-started interpreter that runs Python jobs for a Runner, one at a time.

Started by :mod:`jobyard.runner.pool` as ``python -m jobyard.child <message-fd>`` in
a session of its own, so that signalling its process group reaches exactly the
job it runs and whatever the job started. The main thread runs jobs; a control
thread reads the parent's commands. The protocol is internal to this package:

parent → child, one JSON object a line on the child's stdin (moved away from
fd 0 at start, so that the job's subprocesses cannot read it)::

    {"op": "run", "job_id", "target", "args", "env", "cwd", "marker", "clean"}
    {"op": "pause", "seq", "marker"}   {"op": "resume"}   {"op": "details"}

child → parent, one JSON object a line on the message pipe::

    {"op": "ready", "errors": [...], "cpu_total"}  once, after the preload
    {"op": "started", "kind", "hooks"}          {"op": "paused", "seq", "over"}
    {"op": "progress", "fraction", "message"}   {"op": "metric", "name", "value"}
    {"op": "details", "data"}
    {"op": "done", "ok", "exit_code", "signal", "error", "cpu", "peak", "cpu_total", "retire"}

``cpu`` and ``peak`` are the job's own CPU seconds and peak RSS; ``cpu_total`` is
the child's CPU so far, from which the parent counts the next job's samples.
``paused`` answers a class job's ``pause`` once its hook returned; ``over`` says the
run of that ``marker`` had ended by then (the parent does not stop the child: the
job's ``done`` comes next).

Before ``done``, the child kills what the job left running (it is their
subreaper, so even processes that called ``setsid`` are found), flushes, and
writes the job's ``marker`` on both stdout and stderr: the parent knows every
byte of the job arrived when it has read both markers.

When the parent goes away (EOF on the commands), an idle child exits and a busy
one kills its process group. The kernel sends the child SIGCONT when the parent
dies (``PR_SET_PDEATHSIG``), so that even a paused child wakes up to notice.
"""

from __future__ import annotations

import _thread
import contextlib
import ctypes
import importlib
import json
import os
import queue
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, BinaryIO

from jobyard.child.jobend import Meter, kill_descendants
from jobyard.child.pyjob import PyJob, deaf_to_stop, flush_stdio, to_stderr, write_all
from jobyard.child.state import ProcessState

CONFIG_VAR = "JOBYARD_PYCHILD_CONFIG"
HOOK_GRACE = 2.0  # seconds a hook still running when its job ended has to return
PROGRAM = "jobyard-child"  # sys.argv[0] as jobs see it; they get no other arguments
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


class Channel:
    """The message pipe to the parent; whole messages, from any thread."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, default=str) + "\n").encode()
        with self._lock:
            write_all(self._fd, data)


class Output:
    """The child's stdout and stderr pipes, kept aside on descriptors of their own.

    A job may close fd 1 or 2, point them elsewhere (``os.dup2``), or close
    ``sys.stdout``: its end's markers still reach the parent's pipes (without them the
    job ended ``failed``, or never ended), and :meth:`end` says whether the child's
    output is as it was, for a later job to use.
    """

    def __init__(self) -> None:
        self._fds = (os.dup(1), os.dup(2))  # os.dup: not inherited by a job's subprocesses
        self._files = (_file_of(1), _file_of(2))
        self._streams = (sys.__stdout__, sys.__stderr__)

    def end(self, marker: str) -> bool:
        """Flush the job's output, then the marker on both pipes; whether the job left
        fds 1 and 2 and the standard streams as they were."""
        flush_stdio()
        intact = (_file_of(1), _file_of(2)) == self._files and not any(
            stream is None or stream.closed for stream in self._streams
        )
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__  # undo a job's redirection
        data = marker.encode()
        try:
            for fd in self._fds:
                write_all(fd, data)
        except OSError:
            os._exit(70)  # the parent closed the pipes: it is gone, or has given up on us
        return intact


def _file_of(fd: int) -> tuple[int, int] | None:
    """What ``fd`` refers to (device, inode), None when closed."""
    try:
        found = os.fstat(fd)
    except OSError:
        return None
    return found.st_dev, found.st_ino


class Child:
    def __init__(self, channel: Channel, output: Output) -> None:
        self.channel = channel
        self._output = output
        self._requests: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._job: PyJob | None = None
        self._busy = False
        self._ended: str | None = None  # the marker of the last run whose code has ended

    def serve(self) -> None:
        """Main thread: run jobs as they come."""
        while True:
            self._run(self._requests.get())

    def control(self, commands: BinaryIO) -> None:
        """Control thread: the parent's commands, until EOF."""
        deaf_to_stop()
        for raw in commands:
            with contextlib.suppress(ValueError):
                self._command(json.loads(raw))
        self._parent_gone()

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        job = self._job
        if job is not None:
            job.request_stop()

    def _command(self, message: dict[str, Any]) -> None:
        op, job = message.get("op"), self._job
        if op == "run":
            self._requests.put(message)
        elif op == "pause":
            marker = message.get("marker")  # the run the parent means

            def told() -> None:  # "over": that job's code has ended (while its hook ran)
                over = marker is not None and marker == self._ended
                self.channel.send({"op": "paused", "seq": message.get("seq"), "over": over})

            if job is None or not job.ask("pause", then=told):
                told()
        elif op in ("resume", "details") and job is not None:
            job.ask(op)

    def _run(self, request: dict[str, Any]) -> None:
        with self._lock:
            self._busy = True
        meter = Meter()
        before, threads = set(threading.enumerate()), (_thread._count(), _os_threads())
        state = ProcessState.capture()
        job = PyJob(request, self.channel.send)
        self._job = job
        outcome = job.execute()
        self._ended = request["marker"]  # before the hooks are closed: see "pause"
        self._job = None
        # First: a limit on open files the job left would fail what follows.
        unrestored = state.restore()
        if unrestored:
            to_stderr(f"the job changed what cannot be put back: {', '.join(unrestored)}\n")
        # A hook still running would go on into the next job (its output, its details):
        # such a child is not used again.
        hooks_returned = job.end_hooks(HOOK_GRACE)
        if hooks_returned:
            job.send_details(final=True)
        else:
            to_stderr("a pause(), resume() or details() hook had not returned when the job ended\n")
        kill_descendants()
        usage = meter.finish()
        # A thread the job left running would write into the next jobs' logs, progress
        # and metrics: such a child is not used again.
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        left_raw = _raw_threads_left(*threads)
        # Output the job closed or moved is not fit for the next job either.
        intact = self._output.end(request["marker"])
        retire = bool(left) or left_raw or not intact or bool(unrestored) or not hooks_returned
        self.channel.send({"op": "done", **outcome, **usage, "retire": retire})
        with self._lock:
            self._busy = False

    def _parent_gone(self) -> None:
        with self._lock:
            if self._busy:
                kill_descendants()
                os.killpg(os.getpgrp(), signal.SIGKILL)
        os._exit(0)


def _raw_threads_left(python_before: int, os_before: int, bound: float = 0.1) -> bool:
    """Whether the job left a Python thread running that ``threading`` does not list:
    one started with ``_thread.start_new_thread``.

    Such a thread is counted by ``_thread._count()`` only once it has run, so when the
    process has more threads than before the job they get a moment to. Threads that stay
    and never run Python (a BLAS or OpenMP pool a library keeps) retire no child.
    """
    deadline = time.monotonic() + bound
    while _thread._count() <= python_before:
        if _os_threads() <= os_before or time.monotonic() > deadline:
            return False
        time.sleep(0.005)  # the GIL, for a thread that is still starting
    return True


def _os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(option, value, 0, 0, 0)


def _take_commands() -> BinaryIO:
    """Our command pipe, off fd 0: a job's subprocess must not inherit or read it."""
    commands = os.fdopen(os.dup(0), "rb")  # os.dup: not inheritable
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return commands


def _setup(config: dict[str, Any]) -> list[str]:
    original = config.get("pythonpath")
    if original is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = original  # what the job's own subprocesses should see
    sys.path[:0] = config.get("path", [])
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # prints reach the log as they happen
    errors = []
    for name in config.get("preload", []):
        try:
            importlib.import_module(name)
        # Even SystemExit (argparse at import time) or KeyboardInterrupt: the child is in
        # a session of its own, so no Ctrl-C reaches it, and a module's exit must not end
        # every child (and with them every Python job).
        except BaseException as exc:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    return errors


def main() -> None:
    config = json.loads(os.environ.pop(CONFIG_VAR, "{}"))
    _prctl(PR_SET_PDEATHSIG, signal.SIGCONT)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    message_fd = int(sys.argv[1])
    sys.argv[:] = [PROGRAM]  # job modules read it at import (argparse): no fd number in it
    os.set_inheritable(message_fd, False)
    commands = _take_commands()
    errors = _setup(config)
    child = Child(Channel(message_fd), Output())
    signal.signal(signal.SIGTERM, child.on_sigterm)
    control = threading.Thread(target=child.control, args=(commands,), daemon=True)
    control.start()
    child.channel.send({"op": "ready", "errors": errors, "cpu_total": sum(os.times()[:4])})
    child.serve()
