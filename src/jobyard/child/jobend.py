"""In a pool child, at the end of each job: measure it, and kill what it left running.

The child is a subreaper (``PR_SET_CHILD_SUBREAPER``): processes the job
started and orphaned, even those that called ``setsid``, are re-parented to it,
so its descendants are exactly what the job left behind.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from typing import Any

import psutil

from jobyard.runner.procs import descendants_of, peak_rss_of


class Meter:
    """CPU time and peak memory of one job in this long-lived process."""

    def __init__(self) -> None:
        self._times = os.times()
        self._children_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        _reset_peak_rss()

    def finish(self) -> dict[str, Any]:
        t0, t1 = self._times, os.times()
        cpu = sum(b - a for a, b in zip(t0[:4], t1[:4], strict=True))  # self + reaped children
        peak = peak_rss_of("self")
        children_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if children_rss > self._children_rss:  # a lifetime maximum: it only counts if it grew
            peak = max(peak, children_rss * 1024)
        return {"cpu": cpu, "peak": peak, "cpu_total": sum(t1[:4])}


def _reset_peak_rss() -> None:
    """Reset VmHWM, so that the peak read at the end is this job's."""
    with contextlib.suppress(OSError):
        fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
        try:
            os.write(fd, b"5")
        finally:
            os.close(fd)


def kill_descendants(bound: float = 2.0) -> None:
    """Kill and reap whatever the job left running.

    We are their subreaper: what the job orphaned (even with ``setsid``) is our child now.
    """
    deadline = time.monotonic() + bound
    while True:
        procs = descendants_of(os.getpid())
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        _reap_exited()
        if not procs or time.monotonic() > deadline:
            return
        time.sleep(0.005)  # SIGKILLed processes need a moment to become zombies


def _reap_exited() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
