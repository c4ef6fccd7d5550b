"""Stamps of a job's stages inside ``jobyard serve``, for ``bench/bench_stages.py``.

Loaded by Python at start-up (this directory is put first on the server's
``PYTHONPATH``) when ``JOBYARD_STAGES`` names a file: wraps the functions a submitted
job passes through and appends one line per call, ``<time.time()> <stage> <thread>``,
to that file at once (one ``write``, a few microseconds; nothing kept in memory, so
nothing is lost when the server is stopped). Any other Python process that inherits
the variable (the job's own children) stamps nothing: only ``jobyard serve`` and
``jobyard worker`` do.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

_FILE = os.environ.get("JOBYARD_STAGES")
# What every job submitted to the embedded server passes through, in about this order
# (an end and the claim with it, "end_claim.begun", comes later, when the job has ended).
STAGES = (
    "request.arrived",
    "app.called",
    "credentials.checking",
    "credentials.checked",
    "manager.submitting",
    "insert.begun",
    "insert.committed",
    "worker.offered",
    "claim.begun",
    "claim.committed",
    "worker.launching",
    "run.thread_running",
    "child.sending",
    "child.sent",
    "response.sent",
)


def _stamp(fd: int, stage: str) -> None:
    line = f"{time.time():.6f} {stage} {threading.current_thread().name}\n"
    os.write(fd, line.encode())


def _wrap(
    fd: int, owner: Any, name: str, stage: str, *, after: Callable[[Any], str | None] | None = None
) -> None:
    """Stamp ``stage`` when ``owner.name`` is called; with ``after``, also what it
    says of the result (``None``: nothing) when the call returns."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def stamped(*args: Any, **kwargs: Any) -> Any:
        _stamp(fd, stage)
        result = original(*args, **kwargs)
        if after is not None and (said := after(result)) is not None:
            _stamp(fd, said)
        return result

    setattr(owner, name, stamped)


def _claimed(label: str) -> Callable[[Any], str | None]:
    """After a claim: ``label`` when it took jobs (an idle poll's empty claim says nothing)."""

    def said(result: Any) -> str | None:
        # claim_jobs answers a Claimed (a named tuple), end_and_claim (ends, Claimed | None).
        claimed = result if hasattr(result, "jobs") else result[1]
        return label if claimed is not None and claimed.jobs else None

    return said


def _install(fd: int) -> None:
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from jobyard.access.gate import Gate
    from jobyard.api.observe import ObserveRequests
    from jobyard.manager import JobManager
    from jobyard.runner.handle import ChildHandle
    from jobyard.store.jobs import SqlJobs
    from jobyard.store.queue import SqlQueue
    from jobyard.worker.attempt import JobRun
    from jobyard.worker.loop import Worker

    for protocol in (HttpToolsProtocol, H11Protocol):
        _wrap(fd, protocol, "data_received", "request.arrived")
    _wrap(fd, Gate, "_check", "credentials.checking", after=lambda _: "credentials.checked")
    _wrap(fd, JobManager, "submit", "manager.submitting")
    _wrap(fd, SqlJobs, "add_jobs", "insert.begun", after=lambda _: "insert.committed")
    _wrap(fd, Worker, "offer", "worker.offered")
    _wrap(fd, SqlQueue, "claim_jobs", "claim.begun", after=_claimed("claim.committed"))
    _wrap(fd, SqlQueue, "end_and_claim", "end_claim.begun", after=_claimed("claim.committed"))
    _wrap(fd, Worker, "_launch", "worker.launching")
    _wrap(fd, JobRun, "run", "run.thread_running")
    _wrap(fd, ChildHandle, "send", "child.sending", after=lambda _: "child.sent")
    _wrap_asgi(fd, ObserveRequests)


def _wrap_asgi(fd: int, middleware: Any) -> None:
    """Stamp when the request reaches the app, and when the app returns (the answer's
    last byte was handed to uvicorn)."""
    call = middleware.__call__

    @functools.wraps(call)
    async def answered(self: Any, scope: Any, receive: Any, send: Any) -> None:
        http = scope.get("type") == "http"
        if http:
            _stamp(fd, "app.called")
        await call(self, scope, receive, send)
        if http:
            _stamp(fd, "response.sent")

    middleware.__call__ = answered


if _FILE and {"serve", "worker"} & {*sys.argv[1:3]}:
    _install(os.open(_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
