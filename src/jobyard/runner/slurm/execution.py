"""One jobyard job running as one Slurm batch job: its controls, its output, its end.

The execution never waits on Slurm in the caller's thread except to submit:
controls (stop, continue, hold, release, signals, cancel) run in order on a control
thread and report a pause or resume back through the sink,
state comes from the executor's batched poll, output from its file follower.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobyard.runner.contract import Result, Sample, Sink
from jobyard.runner.output import emit_stdout
from jobyard.runner.protocol import LineSplitter
from jobyard.runner.slurm.cli import SlurmError
from jobyard.runner.slurm.states import GONE, SlurmState, result_of
from jobyard.runner.threads import Threads

if TYPE_CHECKING:
    from jobyard.runner.slurm.cli import SlurmCli

log = logging.getLogger("jobyard.runner.slurm")

READ_SIZE = 1 << 20
CONTROLS = Threads("slurm-control")


class Follow:
    """One output file of a job, read from where the job's log stopped."""

    def __init__(self, stream: str, path: str, offset: int) -> None:
        self.stream, self.path, self._offset = stream, path, offset
        self._lines = LineSplitter()

    @property
    def committed(self) -> int:
        """Bytes of the file whose lines were all handed out (an adopter starts there)."""
        return self._offset - self._lines.pending

    def read(self) -> tuple[int, list[str]]:
        """(bytes read, complete lines): at most ``READ_SIZE`` bytes, the rest on the next
        call (one job's flood must not hold up the others, nor fill the memory)."""
        data = b""
        try:
            with open(self.path, "rb") as file:
                file.seek(self._offset)
                data = file.read(READ_SIZE)
        except FileNotFoundError:
            pass  # not created yet: the job has not started
        self._offset += len(data)
        return len(data), self._lines.feed(data) if data else []

    def rest(self) -> list[str]:
        """The unfinished last line, once the file is read to its end (the job ended)."""
        return self._lines.flush()


class SlurmExecution:
    """A jobyard job that is Slurm job ``ref``."""

    pid = 0  # no process of ours: the job's processes are Slurm's

    def __init__(
        self,
        cli: SlurmCli,
        ref: str,
        token: str,
        paths: tuple[str, str],
        sink: Sink,
        offsets: tuple[int, int] = (0, 0),
        *,
        identity: str | None = None,
    ) -> None:
        self.ref, self.token, self.identity = ref, token, identity
        self.state: SlurmState | None = None  # as the last poll saw it
        self.end: SlurmState | None = None  # set by the poll once Slurm ended the job
        self._cli, self._sink = cli, sink
        self._follows = (
            Follow("stdout", paths[0], offsets[0]),
            Follow("stderr", paths[1], offsets[1]),
        )
        self._cpu, self._rss, self._peak = 0.0, 0, 0
        self._stop_asked = self._kill_asked = False
        self._held = False  # paused before Slurm started it: held rather than stopped
        self._stopped = False  # paused while running: its processes got SIGSTOP
        self._result: Result | None = None
        self._done = threading.Event()
        self._controls: collections.deque[Callable[[], None]] = collections.deque()
        self._control_lock = threading.Lock()
        self._control_busy = False

    # -- Execution ----------------------------------------------------------------
    def pause(self) -> bool:
        self._control(self._pause)
        return False  # the control thread reports it through the sink

    def resume(self) -> bool:
        self._control(self._resume)
        return False

    def terminate(self) -> None:
        if not self._stop_asked:  # once: a second SIGTERM would only cost a call to Slurm
            self._stop_asked = True
            self._control(self._signal_term)

    def kill(self) -> None:
        self._stop_asked = True
        if not self._kill_asked:  # callers repeat it until the end comes: one cancel will do
            self._kill_asked = True
            self._control(self._cancel)

    def sample(self) -> Sample:
        return Sample(rss=self._rss, cpu_seconds=self._cpu)

    def wait(self, timeout: float) -> Result | None:
        self._done.wait(timeout)
        return self._result

    # -- what the executor's threads report ---------------------------------------------
    def details(self) -> dict[str, Any]:
        """What the job row keeps: enough for another worker to adopt the job."""
        return {
            "executor": "slurm",
            "slurm_job_id": self.ref,
            "token": self.token,
            "identity": self.identity,
            "stdout": self._follows[0].path,
            "stderr": self._follows[1].path,
            "offsets": [follow.committed for follow in self._follows],
        }

    def owns(self, state: SlurmState) -> bool:
        """Whether what Slurm shows under our id is this attempt's job: its comment is our
        identity (sacct shows none: then the id is trusted, as for a job submitted
        before jobs were marked)."""
        if self.identity is None or state.state == GONE:
            return True
        return state.comment is None or state.comment == self.identity

    def usage(self, cpu_seconds: float, rss: int) -> None:
        self._cpu, self._rss = max(self._cpu, cpu_seconds), rss
        self._peak = max(self._peak, rss)

    def follow(self) -> None:
        """Hand out the lines written since the last look (the follower thread)."""
        # The lines and the offsets after them in one batch: an adopter after a crash
        # goes on from the stored offsets, so they must never lag the stored lines.
        with self._sink.together():
            if self._emit(end=False):
                self._sink.details(self.details())

    def finish(self) -> None:
        """Slurm ended the job: read its output to the end, clean up, hand out the Result."""
        assert self.end is not None
        self._emit(end=True)
        self._result = result_of(
            self.end,
            asked_to_stop=self._stop_asked,
            cpu_seconds=self._cpu or None,
            peak_memory=self._peak or None,
        )
        state = self.end.state + (f" ({self.end.reason})" if self.end.reason else "")
        self._sink.log("system", f"Slurm job {self.ref} ended: {state}")
        for follow in self._follows:
            with contextlib.suppress(OSError):
                os.unlink(follow.path)
        self._done.set()
        self._sink.ended()

    def _emit(self, *, end: bool) -> bool:
        """Hand out what the files hold since the last look: a chunk of each, or, once the
        job ended, all of it, a chunk at a time (gigabytes may be left)."""
        read = False
        for follow in self._follows:
            while True:
                nbytes, lines = follow.read()
                if nbytes:
                    read = True
                    self._sink.output(nbytes)
                self._hand_out(follow.stream, lines)
                if not (end and nbytes):
                    break
            if end:
                self._hand_out(follow.stream, follow.rest())
        return read

    def _hand_out(self, stream: str, lines: list[str]) -> None:
        for line in lines:
            if stream == "stdout":
                emit_stdout(self._sink, line)
            else:
                self._sink.log("stderr", line)

    # -- controls, in order, off the caller's thread ------------------------------------
    def _control(self, action: Callable[[], None]) -> None:
        with self._control_lock:
            self._controls.append(action)
            if self._control_busy:
                return
            self._control_busy = True
        CONTROLS.run(f"slurm-control-{self.ref}", self._run_controls)

    def _run_controls(self) -> None:
        while True:
            with self._control_lock:
                if not self._controls:
                    self._control_busy = False
                    return
                action = self._controls.popleft()
            try:
                action()
            except SlurmError as exc:
                self._sink.log("system", f"Slurm refused a control of job {self.ref}: {exc}")
            except Exception:
                log.exception("slurm control failed", extra={"slurm_job": self.ref})

    def _scontrol(self, *args: str) -> None:
        self._cli.run(["scontrol", *args, self.ref])

    def _signal(self, name: str) -> None:
        """Signal the batch shell and every step: the job's owner may, unlike ``suspend``."""
        self._cli.run(["scancel", f"--signal={name}", "--full", self.ref])

    def _pause(self) -> None:
        self._report("pause", self._stop_or_hold)

    def _resume(self) -> None:
        self._report("resume", self._continue_or_release)

    def _report(self, control: str, action: Callable[[], None]) -> None:
        """Run ``action`` and tell the run whether it took effect (a refusal changes nothing)."""
        try:
            action()
        except Exception as exc:
            if not isinstance(exc, SlurmError):
                log.exception("slurm control failed", extra={"slurm_job": self.ref})
            self._sink.controlled(control, f"Slurm refused to {control} job {self.ref}: {exc}")
        else:
            self._sink.controlled(control, None)

    def _stop_or_hold(self) -> None:
        """SIGSTOP to the running job; a job still pending is held instead (Slurm refuses
        a signal to it, after a minute and more: so a job the poll saw pending, or squeue
        says is, is held at once). ``scontrol hold`` of a job that just started succeeds
        without stopping anything: the state is looked at again after it."""
        seen = self.state.state if self.state is not None else self._queue_state()
        if seen != "PENDING":
            try:
                self._signal("STOP")
            except SlurmError:
                if self._queue_state() != "PENDING":
                    raise
            else:
                self._stopped = True
                return
        self._scontrol("hold")
        self._held = True
        if self._queue_state() == "PENDING":
            return
        self._held = False
        self._signal("STOP")
        self._stopped = True

    def paused_as_found(self) -> None:
        """An adopted job its dead worker had paused: held if Slurm still has it pending,
        else stopped (a resume then releases or continues it, and a kill continues a
        stopped job before its SIGTERM)."""
        with contextlib.suppress(SlurmError):
            self._held = self._queue_state() == "PENDING"
            self._stopped = not self._held

    def _continue_or_release(self) -> None:
        if self._held:
            self._scontrol("release")
            self._held = False
        else:
            self._signal("CONT")
            self._stopped = False

    def _queue_state(self) -> str:
        return self._cli.run(["squeue", "-h", "-j", self.ref, "-o", "%T"]).strip()

    def _signal_term(self) -> None:
        pending = self._held or (self.state is not None and self.state.state == "PENDING")
        if not pending and self.state is None:  # not polled yet (just started, or adopted)
            with contextlib.suppress(SlurmError):
                pending = self._queue_state() == "PENDING"
        if pending:
            # Nothing runs yet: no grace to give. A signal to a pending job is refused
            # after a minute and more, and the cancel after it waited as long.
            self._cli.run(["scancel", self.ref])
            return
        if self._stopped:
            with contextlib.suppress(SlurmError):  # a stopped process would not see SIGTERM
                self._signal("CONT")
        self._signal("TERM")

    def _cancel(self) -> None:
        with contextlib.suppress(SlurmError):  # it may have ended on the SIGTERM already
            self._cli.run(["scancel", "--signal=KILL", "--full", self.ref])
        with contextlib.suppress(SlurmError):
            self._cli.run(["scancel", self.ref])


def output_files(paths: tuple[str, str], ref: str) -> tuple[str, str]:
    """The job's output paths with Slurm's ``%j`` replaced by its id."""
    out, err = (path.replace("%j", ref) for path in paths)
    return out, err


def remove(path: str | Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
