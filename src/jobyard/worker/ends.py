"""The ends of jobs, group-committed: one writer thread, one transaction for all that wait.

When several runs of a worker end close together, each would otherwise take
its own transaction (and on SQLite queue for the one write lock). Here a run
hands its :class:`~jobyard.models.JobEnd` to the writer and waits; the writer
takes every end waiting at that moment and stores them in one transaction, so
the ends that arrive while a transaction commits share the next one. Nothing
waits for a timer: a lone end is written at once.

A batch that fails is tried again one end at a time, so that only an end the
database refuses fails, and an outage holds up no end but the one being tried.
While the database is out of reach the writer keeps trying an end for a while
(``STALL``), then hands it back to its run, which keeps trying on its own
thread: every end is kept until stored. A try whose connection broke may have
committed unseen; the store then writes nothing a second time, and the end is
recognised as stored by the job's row.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from jobyard.models import Ended, Job, JobEnd
from jobyard.states import LIVE
from jobyard.store import outage
from jobyard.store.protocol import Storage

log = logging.getLogger(__name__)

BATCH = 200  # ends per transaction, at most
STALL = 30.0  # seconds the writer keeps trying one end before its run takes it over


class Stalled(Exception):
    """The database stayed out of reach: the run goes on trying to store its end itself,
    so that the writer can serve the other runs."""


class _Waiting:
    def __init__(self, end: JobEnd) -> None:
        self.end = end
        self.ended: Ended | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class EndWriter:
    """Writes the ends that runs hand it, batched; :meth:`write` blocks until stored.

    After each transaction, ``on_ended`` hears of the jobs it ended for good (from
    the writer's thread, after their runs were told): what waits for them is
    settled for the whole batch at once.
    """

    def __init__(
        self,
        store: Storage,
        clock: Callable[[], datetime],
        on_ended: Callable[[Sequence[Ended]], None] = lambda ended: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._on_ended = on_ended
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def write(self, end: JobEnd) -> Ended | None:
        """Store ``end`` (waiting out an outage); the ended job, or None when not applied.

        Raises what the database refused, when it is not an outage.
        """
        waiting = _Waiting(end)
        self._start()
        self._queue.put(waiting)
        waiting.done.wait()
        if waiting.error is not None:
            raise waiting.error
        return waiting.ended

    def close(self) -> None:
        """Stop the writer thread once what waits is written."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="end-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
            try:
                self._write(batch)
            except Exception as exc:  # a bug: the runs hear of it, the writer goes on
                log.exception("end writer failed", extra={"jobs": _ids(batch)})
                for waiting in batch:
                    if not waiting.done.is_set():
                        waiting.error = exc
                        waiting.done.set()

    def _write(self, batch: list[_Waiting], *, doubtful: bool = False) -> None:
        if len(batch) > 1:
            # One try together; on any error each end goes alone, so that one end the
            # database refuses, or a long outage, holds up no other.
            try:
                stored = self._store_ends(batch, doubtful=doubtful, patience=0.0)
            except Exception as exc:
                doubtful = doubtful or outage.unavailable(exc)
                for waiting in batch:
                    self._write([waiting], doubtful=doubtful)
                return
        else:
            try:
                stored = self._store_ends(batch, doubtful=doubtful, patience=STALL)
            except Exception as exc:
                batch[0].error = exc
                batch[0].done.set()
                return
        for waiting, ended in zip(batch, stored, strict=True):
            waiting.ended = ended
            waiting.done.set()
        final = [ended for ended in stored if ended is not None and ended.job.state.terminal]
        if final:
            try:
                self._on_ended(final)
            except Exception:  # the sweep settles them later: the ends are stored
                ids = [ended.job.id for ended in final]
                log.exception("could not settle what waits for ended jobs", extra={"jobs": ids})

    def _store_ends(
        self, batch: list[_Waiting], *, doubtful: bool, patience: float
    ) -> list[Ended | None]:
        """Store the batch, trying again while the database is out of reach for up to
        ``patience`` seconds; then :class:`Stalled` (its run takes the end over)."""
        ends = [waiting.end for waiting in batch]
        deadline = time.monotonic() + patience
        delay = outage.FIRST_DELAY
        while True:
            try:
                written = self._store.jobs.end_jobs(ends, self._clock())
                return self._recognise(ends, written) if doubtful else written
            except Exception as exc:
                if not outage.unavailable(exc) or time.monotonic() + delay > deadline:
                    if outage.unavailable(exc) and patience:
                        raise Stalled(str(exc).partition("\n")[0]) from exc
                    raise
                doubtful = True  # its commit may have gone through unseen
                log.warning(
                    "database unavailable; will retry",
                    extra={"jobs": _ids(batch), "error": str(exc).partition("\n")[0]},
                )
            time.sleep(delay)
            delay = min(delay * 2, outage.MAX_DELAY)

    def _recognise(self, ends: Sequence[JobEnd], written: list[Ended | None]) -> list[Ended | None]:
        """After a try that may have committed unseen: an end found stored is ours."""
        missing = [end.update.job_id for end, done in zip(ends, written, strict=True) if not done]
        found = {job.id: job for job in self._store.jobs.jobs_by_id(missing)}
        return [
            done if done is not None else stored_end(end, found.get(end.update.job_id))
            for end, done in zip(ends, written, strict=True)
        ]


def _ids(batch: Sequence[_Waiting]) -> list[int]:
    return [waiting.end.update.job_id for waiting in batch]


def stored_end(end: JobEnd, job: Job | None) -> Ended | None:
    """``job`` as ``end`` left it, if ``end`` was stored (a try whose commit went unseen)."""
    if job is None or (job.worker, job.attempt) != (end.worker, end.attempt):
        return None
    # Whether jobs wait for it is not known here: settling finds out.
    return Ended(job, awaited=True) if job.state not in LIVE else None
