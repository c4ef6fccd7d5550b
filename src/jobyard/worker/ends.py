"""The ends of jobs, group-committed: one writer thread, one transaction for all that wait.

When several runs of a worker end close together, each would otherwise take
its own transaction (and on SQLite queue for the one write lock). Here a run
hands its :class:`~jobyard.models.JobEnd` to the writer and waits; the writer
takes every end waiting at that moment and stores them in one transaction, so
the ends that arrive while a transaction commits share the next one. Nothing
waits for a timer: a lone end is written at once.

While the database is out of reach the writer keeps trying (every end is kept
until stored). A try whose connection broke may have committed unseen; the
store then writes nothing a second time, and the writer recognises the end as
its own by the job's row. A batch the database refuses for another reason is
tried again one end at a time, so that only the end at fault fails.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from jobyard.models import Ended, Job, JobEnd
from jobyard.states import LIVE
from jobyard.store import outage
from jobyard.store.protocol import Storage

log = logging.getLogger(__name__)

BATCH = 200  # ends per transaction, at most


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
            self._write(batch)

    def _write(self, batch: list[_Waiting]) -> None:
        try:
            stored = self._store_batch(batch)
        except Exception as exc:
            if len(batch) > 1:
                for waiting in batch:
                    self._write([waiting])
                return
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

    def _store_batch(self, batch: list[_Waiting]) -> list[Ended | None]:
        ends = [waiting.end for waiting in batch]
        doubtful = False

        def write() -> list[Ended | None]:
            nonlocal doubtful
            written = self._store.jobs.end_jobs(ends, self._clock())
            if doubtful:
                return self._recognise(ends, written)
            return written

        def unreachable(exc: BaseException) -> None:
            nonlocal doubtful
            doubtful = True
            ids = [end.update.job_id for end in ends]
            log.warning(
                "database unavailable; will retry",
                extra={"jobs": ids, "error": str(exc).partition("\n")[0]},
            )

        return outage.retry_while_unavailable(write, unreachable)

    def _recognise(self, ends: Sequence[JobEnd], written: list[Ended | None]) -> list[Ended | None]:
        """After a try that may have committed unseen: an end found stored is ours."""
        missing = [end.update.job_id for end, done in zip(ends, written, strict=True) if not done]
        found = {job.id: job for job in self._store.jobs.jobs_by_id(missing)}
        return [
            done if done is not None else _stored_end(end, found.get(end.update.job_id))
            for end, done in zip(ends, written, strict=True)
        ]


def _stored_end(end: JobEnd, job: Job | None) -> Ended | None:
    if job is None or (job.worker, job.attempt) != (end.worker, end.attempt):
        return None
    # Whether jobs wait for it is not known here: settling finds out.
    return Ended(job, awaited=True) if job.state not in LIVE else None
