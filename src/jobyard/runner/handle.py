"""The parent's end of one pool child: its pipes, its reader thread, the job it serves.

Everything the child writes is read by one thread and handed to the attached
job (a :class:`ChildListener`); output between jobs has nobody to belong to
and only goes to the debug log. Each stream of a job ends at the job's marker
(see :mod:`jobyard.child`).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from jobyard.runner.accounts import Account
from jobyard.runner.output import LineFeed, Pump
from jobyard.runner.procs import Exit, ProcessGroup
from jobyard.runner.protocol import LineSplitter

# The longest message a pool child sends (its details() are capped at 1 MiB of JSON, its
# error at 4,096 characters): a longer one is cut, and a cut message is lost.
MAX_MESSAGE = 4 << 20

log = logging.getLogger("jobyard.runner.pool")


class ChildListener(Protocol):
    """The job a child runs now. Called from the child's reader thread."""

    def on_output(self, nbytes: int) -> None: ...

    def on_line(self, stream: str, line: str) -> None: ...

    def on_marker(self, stream: str) -> None: ...

    def on_message(self, message: dict[str, Any]) -> None: ...

    def on_exit(self, ended: Exit) -> None: ...


class MarkerScan:
    """Cuts one stream at the job's end marker, which may arrive split across reads."""

    def __init__(self) -> None:
        self.marker = b""  # empty: no job is writing on this stream
        self._held = b""

    def start(self, marker: bytes) -> None:
        self.marker, self._held = marker, b""

    def feed(self, data: bytes) -> tuple[bytes, bytes | None]:
        """(the job's bytes before the marker, the bytes after it or None until it came)."""
        data, self._held = self._held + data, b""
        at = data.find(self.marker)
        if at >= 0:
            end, self.marker = at + len(self.marker), b""
            return data[:at], data[end:]
        keep = _partial_marker(data, self.marker)
        self._held = data[len(data) - keep :]
        return data[: len(data) - keep], None

    def flush(self) -> bytes:
        """At EOF: what was held back was not a marker after all."""
        held, self._held = self._held, b""
        return held


def _partial_marker(data: bytes, marker: bytes) -> int:
    """Length of the longest end of ``data`` that could be the start of ``marker``."""
    if not data or marker[:1] not in data[-len(marker) :]:
        return 0
    for size in range(min(len(marker) - 1, len(data)), 0, -1):
        if data.endswith(marker[:size]):
            return size
    return 0


class ChildHandle:
    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        message_fd: int,
        on_message: Callable[[ChildHandle, dict[str, Any]], None],
        on_gone: Callable[[ChildHandle], None],
    ) -> None:
        self.pid = proc.pid
        self.group = ProcessGroup(proc.pid)
        self.ready = False
        self.born = time.monotonic()  # started: a pool waits for its preload from then
        self.cpu_total = 0.0  # its CPU seconds (reaped children too), as it last said
        self.exit: Exit | None = None
        self.recent: collections.deque[str] = collections.deque(maxlen=20)
        self._proc = proc
        self._message_fd = message_fd
        self._on_message = on_message
        self._on_gone = on_gone
        self._listener: ChildListener | None = None
        self._scans = {"stdout": MarkerScan(), "stderr": MarkerScan()}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name=f"pychild-{proc.pid}", daemon=True)

    @classmethod
    def spawn(
        cls,
        env: Mapping[bytes, bytes],
        on_message: Callable[[ChildHandle, dict[str, Any]], None],
        on_gone: Callable[[ChildHandle], None],
        account: Account | None = None,
    ) -> ChildHandle:
        """Start a child in ``env``, as ``account`` if given: from ``/`` when that is
        another user, to whom our working directory may be closed."""
        switch = account.popen_args() if account is not None else {}
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jobyard.child", str(write_fd)],
                start_new_session=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
                env=env,
                cwd="/" if switch else None,
                **switch,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return cls(proc, read_fd, on_message, on_gone)

    def start_reading(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def attach(self, listener: ChildListener, marker: str) -> None:
        with self._lock:
            self._listener = listener
            for scan in self._scans.values():
                scan.start(marker.encode())

    def detach(self) -> None:
        with self._lock:
            self._listener = None

    def send(self, message: dict[str, Any]) -> bool:
        """Write a command; False if the child is gone."""
        stdin = self._proc.stdin
        assert stdin is not None
        data = json.dumps(message).encode() + b"\n"
        with self._send_lock:
            try:
                stdin.write(data)
                stdin.flush()
            except (OSError, ValueError):
                return False
        return True

    def kill(self) -> None:
        self.group.kill()

    # -- the reader thread ----------------------------------------------------
    def _read(self) -> None:
        proc = self._proc
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdin is not None
        pump = Pump(self.pid)
        pump.add(proc.stdout.fileno(), self._stream("stdout"))
        pump.add(proc.stderr.fileno(), self._stream("stderr"))
        # Whole messages: a job's error or details() can be longer than a log line.
        pump.add(self._message_fd, LineFeed(self._message, MAX_MESSAGE))
        try:
            pump.run(self._reap)
        finally:
            for stream in (proc.stdout, proc.stderr, proc.stdin):
                with contextlib.suppress(OSError):
                    stream.close()
            os.close(self._message_fd)
        with self._lock:
            listener, self._listener = self._listener, None
        self._on_gone(self)
        if listener is not None and self.exit is not None:
            listener.on_exit(self.exit)

    def _reap(self) -> None:
        self.exit = self.group.reap()
        self._proc.returncode = os.waitstatus_to_exitcode(self.exit.status)  # reaped: by us

    def _stream(self, stream: str) -> Callable[[bytes], None]:
        scan, job_lines, idle_lines = self._scans[stream], LineSplitter(), LineSplitter()

        def on_data(data: bytes) -> None:
            with self._lock:
                listener = self._listener if scan.marker else None
            if listener is None:
                self._idle(stream, idle_lines, data)
            elif not data:  # EOF before the marker: the child died during the job
                _to_job(listener, stream, job_lines, scan.flush(), end=True)
            else:
                ours, after = scan.feed(data)
                _to_job(listener, stream, job_lines, ours, end=after is not None)
                if after is not None:  # the marker: this stream of the job is complete
                    listener.on_marker(stream)
                    if after:
                        self._idle(stream, idle_lines, after)

        return on_data

    def _idle(self, stream: str, lines: LineSplitter, data: bytes) -> None:
        """Output that belongs to no job: kept for diagnosis, logged at debug level."""
        for line in lines.feed(data) if data else lines.flush():
            self.recent.append(line)
            log.debug("pool child output", extra={"pid": self.pid, "stream": stream, "line": line})

    def _message(self, line: str) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            log.warning("bad message from a pool child", extra={"pid": self.pid, "line": line})
            return
        if "cpu_total" in message:
            self.cpu_total = float(message["cpu_total"])
        listener = self._listener
        if message.get("op") == "ready" or listener is None:
            self._on_message(self, message)
        else:
            listener.on_message(message)


def _to_job(
    listener: ChildListener, stream: str, lines: LineSplitter, data: bytes, *, end: bool
) -> None:
    if data:
        listener.on_output(len(data))
    for line in lines.feed(data) + (lines.flush() if end else []):
        listener.on_line(stream, line)
