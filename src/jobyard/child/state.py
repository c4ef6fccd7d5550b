"""In a pool child: the process-wide state a job may change, put back before the next job.

A child serves one job after another, and a change one job makes to its process
would rule the later ones: SIGCHLD ignored makes every ``subprocess.run`` of a later
job return 0, SIGTERM ignored makes its stops and timeouts wait for the kill, a
``RLIMIT_NOFILE`` of 5 fails it. The environment and the working directory are put
back by :class:`~jobyard.child.pyjob.PyJob`; this module puts back what else a job
changes with one call: the signal dispositions, the main thread's signal mask, the
umask, the resource limits, ``sys.path``, ``sys.argv`` and the root logger's
handlers and level. What cannot be put back (a hard limit the job lowered, a
handler installed from C) is named, and the child is not used again.
"""

from __future__ import annotations

import importlib
import logging
import os
import resource
import signal
import sys
from dataclasses import dataclass
from typing import Any

# signal.getsignal turns each answer into an enum, two thirds of the cost of this module:
# the C function's plain answers compare the same way and signal.signal takes them back.
_getsignal: Any = importlib.import_module("_signal").getsignal

SIGNALS = tuple(s for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP))
LIMITS = tuple(getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_"))


@dataclass(frozen=True)
class ProcessState:
    """What a job may leave changed in the child, as it was before the job."""

    handlers: tuple[Any, ...]  # signal.getsignal of each of SIGNALS
    mask: frozenset[int]
    umask: int
    limits: tuple[tuple[int, int], ...]  # of each of LIMITS
    path: tuple[str, ...]
    argv: tuple[str, ...]
    log_handlers: tuple[logging.Handler, ...]
    log_level: int
    log_disable: int

    @classmethod
    def capture(cls) -> ProcessState:
        """The state now; from the main thread."""
        umask = os.umask(0o022)
        os.umask(umask)
        root = logging.getLogger()
        return cls(
            handlers=tuple(_getsignal(s) for s in SIGNALS),
            mask=frozenset(signal.pthread_sigmask(signal.SIG_BLOCK, ())),
            umask=umask,
            limits=tuple(resource.getrlimit(limit) for limit in LIMITS),
            path=tuple(sys.path),
            argv=tuple(sys.argv),
            log_handlers=tuple(root.handlers),
            log_level=root.level,
            log_disable=root.manager.disable,
        )

    def restore(self) -> list[str]:
        """Put the state back (from the main thread); what could not be."""
        os.umask(self.umask)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)
        failed = self._restore_limits() + self._restore_handlers()
        if tuple(sys.path) != self.path:
            sys.path[:] = self.path
        if tuple(sys.argv) != self.argv:
            sys.argv[:] = self.argv
        self._restore_logging()
        return failed

    def _restore_logging(self) -> None:
        root = logging.getLogger()
        if tuple(root.handlers) != self.log_handlers:
            root.handlers[:] = self.log_handlers
        if root.level != self.log_level:  # each of these clears every logger's cache
            root.setLevel(self.log_level)
        if root.manager.disable != self.log_disable:
            logging.disable(self.log_disable)

    def _restore_limits(self) -> list[str]:
        failed = []
        for limit, saved in zip(LIMITS, self.limits, strict=True):
            if resource.getrlimit(limit) != saved:
                try:
                    resource.setrlimit(limit, saved)
                except (OSError, ValueError) as exc:  # a hard limit lowered for good
                    failed.append(f"resource limit {limit}: {exc}")
        return failed

    def _restore_handlers(self) -> list[str]:
        failed = []
        for signum, saved in zip(SIGNALS, self.handlers, strict=True):
            if _getsignal(signum) == saved:
                continue
            if saved is None:  # installed from C: Python cannot put it back
                failed.append(f"handler of {signum.name}")
                continue
            try:
                signal.signal(signum, saved)
            except (OSError, ValueError) as exc:
                failed.append(f"handler of {signum.name}: {exc}")
        return failed
