"""The ends of jobs, group-committed: one transaction for all the ends that wait.

When several runs of a worker end close together, each would otherwise take
its own transaction (and on SQLite queue for the one write lock). Here a run
hands its :class:`~jobyard.models.JobEnd` to the writer; the run that leads
(see :class:`EndWriter`) takes every end waiting at that moment and stores them
in one transaction, so the ends that arrive while a transaction commits share
the next one. Nothing waits for a timer: a lone end is written at once, by its
own run.

A batch that fails is tried again one end at a time, so that only an end the
database refuses fails, and an outage holds up no end but the one being tried.
While the database is out of reach the leader keeps trying an end for a while
(``STALL``), then hands it back to its run, which keeps trying by itself:
every end is kept until stored. A try whose connection broke may have
committed unseen; the store then writes nothing a second time, and the end is
recognised as stored by the job's row.
"""

from __future__ import annotations

import logging
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
        self.over = False  # stored, not applied, or failed: ``ended`` and ``error`` say which
        self.leads = False  # handed the lead: write what waits, this end among it
        self.woken = threading.Event()

    def finish(self, ended: Ended | None = None, error: BaseException | None = None) -> None:
        self.ended, self.error, self.over = ended, error, True
        self.woken.set()


class EndWriter:
    """Writes the ends that runs hand it, batched; :meth:`write` blocks until stored.

    No thread of its own: the first run to hand in an end while nobody writes
    leads, and writes what waits (its own end first, with any that arrived with
    it) until its own is stored; then it hands the lead to the oldest end still
    waiting, whose run writes the next batch. A lone end is written by its own
    run, with no hand-off between threads (a wake-up costs more than the write).

    After each transaction, ``on_ended`` hears of the jobs it ended for good (one
    call at a time, on the run that wrote them, after their runs were told and the
    lead was handed on): what waits for them is settled for the whole batch at once.
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
        self._pending: list[_Waiting] = []
        self._leading = False
        self._lock = threading.Lock()
        self._settling = threading.Lock()

    def write(self, end: JobEnd) -> Ended | None:
        """Store ``end`` (waiting out an outage); the ended job, or None when not applied.

        Raises what the database refused, when it is not an outage.
        """
        waiting = _Waiting(end)
        with self._lock:
            self._pending.append(waiting)
            leads, self._leading = not self._leading, True
        if not leads:
            waiting.woken.wait()
        if not waiting.over:  # leading from the start, or handed the lead
            self._lead(waiting)
        if waiting.error is not None:
            raise waiting.error
        return waiting.ended

    def _lead(self, mine: _Waiting) -> None:
        """Write batches of what waits until ``mine`` is over, then hand the lead on."""
        final: list[Ended] = []
        while not mine.over:
            with self._lock:
                batch = self._pending[:BATCH]
                del self._pending[:BATCH]
            final += self._write_batch(batch)
        with self._lock:
            if self._pending:
                successor = self._pending[0]
                successor.leads = True
                successor.woken.set()
            else:
                self._leading = False
        if final:
            with self._settling:
                try:
                    self._on_ended(final)
                except Exception:  # the sweep settles them later: the ends are stored
                    ids = [ended.job.id for ended in final]
                    log.exception("could not settle what waits for ended jobs", extra={"jobs": ids})

    def _write_batch(self, batch: list[_Waiting]) -> list[Ended]:
        try:
            return self._write(batch)
        except Exception as exc:  # a bug: the runs hear of it, the writer goes on
            log.exception("end writer failed", extra={"jobs": _ids(batch)})
            for waiting in batch:
                if not waiting.over:
                    waiting.finish(error=exc)
            return []

    def _write(self, batch: list[_Waiting], *, doubtful: bool = False) -> list[Ended]:
        """Store the batch's ends; the jobs they ended for good."""
        if len(batch) > 1:
            # One try together; on any error each end goes alone, so that one end the
            # database refuses, or a long outage, holds up no other.
            try:
                stored = self._store_ends(batch, doubtful=doubtful, patience=0.0)
            except Exception as exc:
                doubtful = doubtful or outage.unavailable(exc)
                return [
                    ended
                    for waiting in batch
                    for ended in self._write([waiting], doubtful=doubtful)
                ]
        else:
            try:
                stored = self._store_ends(batch, doubtful=doubtful, patience=STALL)
            except Exception as exc:
                batch[0].finish(error=exc)
                return []
        for waiting, ended in zip(batch, stored, strict=True):
            waiting.finish(ended)
        return [ended for ended in stored if ended is not None and ended.job.state.terminal]

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
