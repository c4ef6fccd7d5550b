"""The ends of jobs, group-committed by the worker's loop, with the claim of the next jobs.

When several runs of a worker end close together, each would otherwise take
its own transaction (and on SQLite queue for the one write lock). Here a run
hands its :class:`~jobyard.models.JobEnd` over and waits; the worker's loop,
woken by it, takes every end waiting at that moment and stores them in one
transaction — with the claim of the jobs that take their slots, when it claims
(:meth:`~jobyard.store.protocol.QueueStore.end_and_claim`): a job's end and its
successor's start cost one commit and no hand-off between threads. The ends
that arrive while a transaction commits share the next one; nothing waits for
a timer.

A batch the database refuses is tried again one end at a time, without the
claim, so that only the end it refuses fails. A batch that finds the database
out of reach is tried once more (a pooled connection the database dropped is
replaced then); if that fails too, every end not stored goes back to its run
(:class:`Stalled`), which keeps trying on its own thread, and the flush raises:
the loop goes on (heartbeats, fencing) through an outage after two tries, not
one per end, and every end is kept until stored. A try whose connection broke
may have committed unseen; the store then writes nothing a second time, and
the end is recognised as stored by the job's row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum

from jobyard.models import Ended, Job, JobEnd
from jobyard.states import LIVE
from jobyard.store import outage
from jobyard.store.protocol import Claimed, ClaimOrder, Met, Storage

log = logging.getLogger(__name__)

BATCH = 200  # ends per transaction, at most


class Flushed(Enum):
    """How a :meth:`EndWriter.flush` went with its claim."""

    CLAIMED = "claimed"  # the claim was made, with the ends
    UNASKED = "unasked"  # no claim: none was asked, or none was wanted (nothing released)
    FAILED = "failed"  # the claim failed with the ends, which were stored without it


class Stalled(Exception):
    """The end was not stored here (the database is out of reach, or the worker's loop
    stopped): its run stores it itself."""


class Waiting:
    """An end handed over by its run, which waits until ``done``."""

    def __init__(self, end: JobEnd) -> None:
        self.end = end
        self.ended: Ended | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def tell(self, ended: Ended | None = None, error: BaseException | None = None) -> None:
        self.ended, self.error = ended, error
        self.done.set()


class EndWriter:
    """Ends handed over by runs (:meth:`write`, which blocks until stored), stored in
    batches by :meth:`flush` on the worker's loop, which ``wake`` wakes.

    ``on_ended`` hears of the jobs a transaction ended for good, when the loop calls
    :meth:`report` (after it started the jobs it claimed with them): what waits for
    them is settled for the whole batch at once. Given ``settle``, the ends stored
    with a claim have their edges settled in that transaction (the claim may take
    what they released): those come to ``on_ended`` no longer ``awaited``.
    """

    def __init__(
        self,
        store: Storage,
        clock: Callable[[], datetime],
        on_ended: Callable[[Sequence[Ended]], None] = lambda ended: None,
        wake: Callable[[], None] = lambda: None,
        settle: Met | None = None,
    ) -> None:
        self._store = store
        self._settle = settle
        self._clock = clock
        self._on_ended = on_ended
        self._wake = wake
        self._waiting: list[Waiting] = []
        self._final: list[Ended] = []  # ended for good, not reported yet
        self._lock = threading.Lock()
        self._closed = False

    @property
    def settles(self) -> bool:
        """Whether the ends it stores with a claim have their edges settled with them."""
        return self._settle is not None

    def write(self, end: JobEnd) -> Ended | None:
        """Store ``end``; the ended job, or None when not applied.

        Raises :class:`Stalled` when the run is to store it itself, and what the
        database refused, when it is not an outage.
        """
        waiting = Waiting(end)
        with self._lock:
            if self._closed:
                raise Stalled("the worker's loop has stopped")
            self._waiting.append(waiting)
        self._wake()
        waiting.done.wait()
        if waiting.error is None:
            return waiting.ended
        try:
            raise waiting.error
        finally:
            # The error's traceback holds this frame: without its ``waiting``, which holds
            # the error, they form no cycle, and the run is freed once it ends, not at the
            # collector's next full pass (as concurrent.futures' result() does).
            del waiting

    def take(self) -> list[Waiting]:
        """The ends waiting now (at most ``BATCH``), for :meth:`flush`."""
        with self._lock:
            batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
        if self._waiting:
            self._wake()  # the rest goes in the next batch
        return batch

    def flush(
        self,
        batch: list[Waiting],
        order: ClaimOrder | None = None,
        claimed: Callable[[Claimed], None] = lambda claimed: None,
        *,
        released_only: bool = False,
    ) -> Flushed:
        """Store ``batch`` and tell its runs; with ``order``, claim in the same transaction
        and hand ``claimed`` what it took before the runs are told (their threads
        would otherwise take the interpreter from the jobs' starts); with
        ``released_only`` too, only if the ends' settling released a job (the claim
        then takes what it finds, by priority, as any claim does).

        How it went with the claim (a batch that failed together is stored without
        it). Raises the error of an outage that outlasted a second try, once every
        end not stored is back with its run, and what ``claimed`` raised, once the
        runs are told; nothing else.
        """
        if not batch:
            return Flushed.UNASKED
        if order is None:
            self._write(batch)
            return Flushed.UNASKED
        ends = [waiting.end for waiting in batch]
        try:
            ended, took = self._store.queue.end_and_claim(
                ends, self._clock(), order, settle=self._settle, released_only=released_only
            )
        except Exception as exc:
            unavailable = outage.unavailable(exc)
            self._write(batch, doubtful=unavailable, retried=unavailable)
            return Flushed.FAILED
        try:
            if took is not None:
                claimed(took)
        finally:  # the runs learn of their ends even if a job could not be started
            self._stored(batch, ended)
        return Flushed.UNASKED if took is None else Flushed.CLAIMED

    def report(self) -> None:
        """Tell ``on_ended`` of the jobs the last flushes ended for good."""
        final, self._final = self._final, []
        if not final:
            return
        try:
            self._on_ended(final)
        except Exception:  # the sweep settles them later: the ends are stored
            ids = [ended.job.id for ended in final]
            log.exception("could not settle what waits for ended jobs", extra={"jobs": ids})

    def close(self) -> None:
        """No more ends through the loop: each run stores its own from now on."""
        with self._lock:
            self._closed = True
        self.hand_back("the worker's loop has stopped")

    def hand_back(self, reason: str) -> None:
        """Every end waiting now goes back to its run (:class:`Stalled`, for ``reason``),
        which stores it itself."""
        with self._lock:
            batch, self._waiting = self._waiting, []
        for waiting in batch:
            waiting.tell(error=Stalled(reason))

    def _write(
        self, batch: list[Waiting], *, doubtful: bool = False, retried: bool = False
    ) -> None:
        """Store ``batch`` together; if the database refuses it, each end alone, so that
        one end it refuses holds up no other. An outage is tried once more (``retried``:
        not again); then it is raised, the ends not stored handed back to their runs."""
        parts = [batch]
        while parts:
            part = parts.pop(0)
            try:
                stored = self._store_ends(part, doubtful=doubtful)
            except Exception as exc:
                if outage.unavailable(exc):
                    doubtful = True  # it may have committed unseen
                    if not retried:
                        retried = True
                        parts.insert(0, part)
                        continue
                    self._stall([waiting for each in (part, *parts) for waiting in each], exc)
                    raise
                if len(part) > 1:
                    parts[:0] = [[waiting] for waiting in part]
                else:
                    part[0].tell(error=exc)
                continue
            self._stored(part, stored)

    def _stall(self, batch: list[Waiting], exc: Exception) -> None:
        reason = outage.first_line(exc)
        log.warning(
            "database unavailable; the runs keep trying to store their ends",
            extra={"jobs": _ids(batch), "error": reason},
        )
        for waiting in batch:
            waiting.tell(error=Stalled(reason))

    def _stored(self, batch: list[Waiting], stored: list[Ended | None]) -> None:
        for waiting, ended in zip(batch, stored, strict=True):
            waiting.tell(ended)
        self._final += [ended for ended in stored if ended is not None and ended.job.state.terminal]

    def _store_ends(self, batch: list[Waiting], *, doubtful: bool) -> list[Ended | None]:
        ends = [waiting.end for waiting in batch]
        written = self._store.jobs.end_jobs(ends, self._clock())
        return self._recognise(ends, written) if doubtful else written

    def _recognise(self, ends: Sequence[JobEnd], written: list[Ended | None]) -> list[Ended | None]:
        """After a try that may have committed unseen: an end found stored is ours."""
        missing = [end.update.job_id for end, done in zip(ends, written, strict=True) if not done]
        found = {job.id: job for job in self._store.jobs.jobs_by_id(missing)}
        return [
            done if done is not None else stored_end(end, found.get(end.update.job_id))
            for end, done in zip(ends, written, strict=True)
        ]


def _ids(batch: Sequence[Waiting]) -> list[int]:
    return [waiting.end.update.job_id for waiting in batch]


def stored_end(end: JobEnd, job: Job | None) -> Ended | None:
    """``job`` as ``end`` left it, if ``end`` was stored (a try whose commit went unseen)."""
    if job is None or (job.worker, job.attempt) != (end.worker, end.attempt):
        return None
    # Whether jobs wait for it is not known here: settling finds out.
    return Ended(job, awaited=True) if job.state not in LIVE else None
