"""The context a Python job gets: report progress and metrics, log, notice a stop.

A function job receives it as its first argument when that parameter is named
``ctx`` or ``context``::

    def export(ctx: Context, *, from_date: str, limit: int = 1000) -> dict[str, int]:
        for i, row in enumerate(rows(from_date, limit)):
            if ctx.stopping:
                break
            ...
            ctx.progress(i / limit, f"row {i}")
        ctx.log("exported %d rows", limit)
        return {"rows": limit}  # numbers in a returned dict become metrics

A class job gets it in ``start(ctx, **args)`` and in its hooks ``pause(ctx)``,
``resume(ctx)``, ``stop(ctx)`` and ``clean(ctx, **args)``.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any


class Context:
    """What a running Python job can tell the job manager, and ask it.

    Created by the job's child process; job code only uses it.
    """

    def __init__(
        self,
        job_id: int,
        send: Callable[[dict[str, Any]], None],
        stop: threading.Event,
    ) -> None:
        self.job_id = job_id
        self.watched = False  # the job has read ``stopping``: it stops on its own
        self._send = send
        self._stop = stop

    def progress(self, fraction: float | None = None, message: str | None = None) -> None:
        """Report how far the job is: ``fraction`` from 0 to 1 (clamped), and/or a message."""
        if fraction is not None:
            fraction = float(fraction)
            fraction = min(max(fraction, 0.0), 1.0) if math.isfinite(fraction) else None
        text = None if message is None else str(message)  # as a metric's name: any object
        self._send({"op": "progress", "fraction": fraction, "message": text})

    def metric(self, name: str, value: float) -> None:
        """Set the metric ``name`` (rows, bytes, …) to ``value``; the last value counts.

        A value no metric holds (NaN, an infinity, ``10**400``) is not kept: a line on
        stderr says so, and the job goes on.
        """
        self._send({"op": "metric", "name": str(name), "value": value})

    def log(self, message: str, *args: object) -> None:
        """Write a line to the job's log (stdout), in order with what the job printed.

        ``args`` are %-formatted into ``message``, as with :mod:`logging`; arguments that
        do not fit it fail nothing, as with logging: the message is written with them after
        it, and why on stderr.
        """
        text = _shown(message, str)  # as logging takes any object
        if args:
            # One mapping fills ``%(name)s``, as logging has it.
            fill = args[0] if len(args) == 1 and isinstance(args[0], Mapping) and args[0] else args
            try:
                text %= fill
            except Exception as exc:
                sys.stderr.write(f"ctx.log: the arguments do not fit {text!r}: {exc}\n")
                text = " ".join([text, *(_shown(arg, repr) for arg in args)])
        for stream in (sys.stdout, sys.__stdout__):
            if stream is not None:
                stream.flush()
        # straight to fd 1, after the flush: the same pipe as prints and subprocess output,
        # so the line keeps its place among them
        _write_all(1, (text + "\n").encode("utf-8", errors="replace"))

    @property
    def stopping(self) -> bool:
        """True once the job was asked to stop: wind down and return soon.

        A function job that reads it stops cooperatively: asked to stop, it is left to
        return (within the type's ``kill_grace``); one that never reads it is stopped
        at once, where it runs (``SystemExit``; its ``finally`` blocks run)."""
        self.watched = True
        return self._stop.is_set()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _shown(value: object, show: Callable[[object], str]) -> str:
    """``show(value)``, or what it is when its own ``__str__`` or ``__repr__`` fails."""
    try:
        return show(value)
    except Exception as exc:
        return f"<{type(value).__name__}: {show.__name__}() failed: {exc!r}>"
