"""The worker: claims jobs, runs each in its own process group, applies control, keeps leases.

One loop thread claims ready jobs (up to ``concurrency``), stores the ends the
runs hand it (with the claim of the jobs that take their slots, in one
transaction: :mod:`jobyard.worker.ends`), forwards control intents to the runs
and renews the leases; each claimed job gets a
:class:`~jobyard.worker.attempt.JobRun` thread that drives its process. What
dead workers of this host left (their jobs, their processes) is found by
:class:`~jobyard.worker.orphans.Orphans`. The database is the only channel to
the API: a worker never receives calls from it, it reads intents from the job
rows (and is woken early in the embedded mode).

A drain — SIGTERM, or a request stored on the worker's row by the API — stops
claiming, lets the running jobs finish for up to the drain timeout, then hands
the rest back to the queue (their history says by whom and why).

A worker whose row is gone (forgotten while it ran: frozen, or cut off, past its
lease) or is another process's (a namesake started since) stops too, at once: it is
no longer listed, so no one could see or drain it, and its name may be another's.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from jobyard import __version__, outcomes
from jobyard.clock import utcnow
from jobyard.events import wakeups
from jobyard.events.listen import listen
from jobyard.models import Ended, Job, WorkerInfo
from jobyard.roster import WorkerState
from jobyard.routing import check_tags, routes_for
from jobyard.runner.executors import Executors
from jobyard.states import JobState
from jobyard.store import Store, outage
from jobyard.store.protocol import Claimed, ClaimOrder, Met, Storage
from jobyard.worker.attempt import Abandon, HandBack, JobRun, RunSettings
from jobyard.worker.ends import EndWriter, Flushed, Stalled, Waiting
from jobyard.worker.orphans import Orphans

log = logging.getLogger(__name__)


class NameInUse(Exception):
    """Another live worker has this worker's name: two would renew each other's leases."""


POOL_READY_WAIT = 5.0  # seconds a new worker waits for its Python children before claiming
# How far the clock may have stepped back between a failed claim and the look for what it
# took (see Worker._start_unseen).
UNSEEN_CLOCK_SLACK = timedelta(seconds=1)
HAND_BACK_WAIT = 10.0  # seconds a stopping worker waits for the hand-backs' writes
STOP_WRITE_WAIT = 5.0  # seconds it waits for each of its own writes (its state, its row)
THREADS_WAIT = 10.0  # seconds it waits for its loop and listener (held by a statement)
WATCH_WAIT = 5.0  # seconds it waits for its lease watch (which waits for no database)
LEASE_WATCH = 1.0  # seconds between looks for lapsed leases (at most a quarter lease)


@dataclass(frozen=True)
class Unseen:
    """A claim that failed may have committed unseen: since when (the worker's clock and
    the monotonic one), and the attempts the worker ran by then (none of them is new)."""

    since: datetime
    leased: float
    known: frozenset[tuple[int, int]]


@dataclass(frozen=True)
class WorkerSettings:
    name: str
    queues: Sequence[str] | None = None  # None: every queue
    tags: Sequence[str] = ()  # it runs jobs whose required tags are all among these
    concurrency: int = 4
    kill_grace: float = 10.0
    lease_timeout: float = 30.0
    heartbeat_interval: float = 5.0
    poll_interval: float = 0.5
    drain_timeout: float = 5.0
    log_cap: int = 50_000_000


def default_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def stop_within(drain_timeout: float, kill_grace: float) -> float:
    """The longest :meth:`Worker.stop` takes, however the database behaves (a supervisor
    must wait longer before it kills the worker and every job process with it).

    The drain; the jobs' stop (SIGTERM, a kill grace, SIGKILL, up to another kill grace
    for the end to be confirmed) and the hand-backs' writes after it; and each other
    bounded wait: its three own writes (its state, the hand-back of jobs it never
    started, its row), its loop and listener threads, its lease watch.
    """
    own_writes = 3 * STOP_WRITE_WAIT
    return drain_timeout + 2 * kill_grace + HAND_BACK_WAIT + own_writes + THREADS_WAIT + WATCH_WAIT


class Worker:
    def __init__(
        self,
        store: Storage,
        runner: Executors,
        settings: WorkerSettings,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_terminal: Callable[[int], None] = lambda job_id: None,
        on_ended: Callable[[Sequence[Ended]], None] | None = None,
        on_lost: Callable[[Job], None] = lambda job: None,
        settle: Met | None = None,
    ) -> None:
        """``on_terminal`` hears of one job ended for good; ``on_ended`` of the jobs one
        transaction of the loop's ends ended (by default, each goes to ``on_terminal``);
        ``on_lost`` of a dead worker's job ended for good here. With ``settle``, the
        loop settles the edges out of the jobs it ends in their end's transaction
        (:class:`~jobyard.worker.ends.EndWriter`)."""
        self.store = store
        self.runner = runner
        self.settings = settings
        self.name = settings.name
        self.host = socket.gethostname()
        self.tags = check_tags(settings.tags)
        self._routes = frozenset(routes_for(self.tags))  # the jobs' tags it can run
        self._paused: set[str] = set()  # queues paused, as this process last heard
        self._offered = False  # jobs were offered: it runs beside an API, in one process
        self._clock = clock
        self._runs: dict[int, JobRun] = {}
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._unwatched = threading.Event()  # the lease watch ends: set last, at stop
        self._draining = threading.Event()
        self._hurry = threading.Event()
        self._stop_lock = threading.Lock()
        self._look_for_drain = False
        self._look_for_controls = True
        self._look_for_work = True
        self._more = True  # the last claim left jobs waiting (or limits cut it): look again
        self._full = True  # the last claim filled its slots and saw more jobs waiting
        # Failed ticks (the database may be away): told once, then every few seconds.
        self._tick_outage = outage.OutageLog(
            log, "worker tick failed", "worker tick works again", {"worker": self.name}
        )
        self._limited = True  # max_running limits are stored (read again at each heartbeat)
        self._poll_due = 0.0  # monotonic time of the next full look, asked for or not
        self.stopped = threading.Event()  # set once stop() has handed everything back
        self.unreturned: list[int] = []  # jobs stop() could not hand back (database away)
        self.forgotten: str | None = None  # why it stopped: its row is gone, or not its own
        # Jobs the lease watch fenced → monotonic time when; kept until a heartbeat after it
        # (the database answered again: the scheduler recovers them).
        self._fenced_at: dict[int, float] = {}
        self._unlaunched: list[Job] = []  # claimed once the worker was stopping
        self._fenced_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self._last_heartbeat = 0.0
        self._released: set[int] = set()  # runs whose end is stored: their slots are free
        # Since when a claim may have committed unseen: see _start_unseen.
        self._unseen: Unseen | None = None
        self._ends = EndWriter(
            store, clock, on_ended or self._each_terminal, wake=self._wakeup.set, settle=settle
        )
        self._run_settings = RunSettings(
            worker=self.name,
            kill_grace=settings.kill_grace,
            clock=clock,
            log_cap=settings.log_cap,
            on_terminal=on_terminal,
            on_done=self._wakeup.set,  # a slot is free: claim, nothing else
            end_writer=self._ends,
        )
        self._on_terminal = on_terminal
        self._orphans = Orphans(
            store,
            worker=self.name,
            host=self.host,
            lease_timeout=settings.lease_timeout,
            clock=clock,
            running=lambda: self._runs.keys(),  # the loop replaces the dict: read it anew
            follow=self._follow,
            on_lost=on_lost,
            on_terminal=on_terminal,
        )

    @property
    def claiming(self) -> bool:
        """Whether it claims new jobs: no longer once it drains or stops."""
        return not (self._draining.is_set() or self._stopping.is_set())

    def _each_terminal(self, ended: Sequence[Ended]) -> None:
        for each in ended:
            self._on_terminal(each.job.id)

    # -- lifecycle ---------------------------------------------------------
    def refuse_namesake(self, now: datetime) -> None:
        """Raise :class:`NameInUse` if a worker of this name still runs."""
        prior = self.store.workers.get_worker(self.name)
        if prior is not None and self._orphans.still_running(prior, now):
            raise NameInUse(
                f"worker name {self.name!r} is in use by pid {prior.pid} on {prior.host}: "
                "give this worker another --name (or stop that one first)"
            )

    def start(self) -> None:
        now = self._clock()
        prior = self.store.workers.get_worker(self.name)  # a dead namesake's, on this host?
        self.refuse_namesake(now)
        info = WorkerInfo(
            name=self.name,
            host=self.host,
            pid=os.getpid(),
            version=__version__,
            queues=list(self.settings.queues or ["*"]),
            concurrency=self.settings.concurrency,
            started_at=now,
            heartbeat_at=now,
            tags=list(self.tags),
            lease_timeout=self.settings.lease_timeout,
        )
        self.store.workers.register_worker(info)
        self._paused |= self.store.queue.paused_queues()
        # The jobs a dead worker of this name left live here are recovered too: nothing
        # of this process runs yet, and the name is no other live worker's.
        self._orphans.recover(prior)
        self._orphans.sweep_in_background(prior)
        self._watchdog = threading.Thread(
            target=self._watch_leases, name=f"worker-leases-{self.name}", daemon=True
        )
        self._watchdog.start()
        if isinstance(self.store, Store) and self.store.dialect == "postgresql":
            # Woken at once by submissions and controls (LISTEN is a PostgreSQL extra).
            self._listener = threading.Thread(
                target=listen,
                args=(self.store, wakeups.CHANNEL, self._notified, self._stopping),
                name=f"worker-listen-{self.name}",
                daemon=True,
            )
            self._listener.start()
        # The loop last: its first claim may have a stop begin (a SIGTERM as the worker
        # starts), which joins the other threads, and a thread not yet started cannot be.
        self._thread = threading.Thread(target=self._loop, name=f"worker-{self.name}", daemon=True)
        self._thread.start()
        log.info(
            "worker started",
            extra={"worker": self.name, "queues": info.queues, "tags": info.tags},
        )

    def wake(self) -> None:
        """Look for work and control intents now (no polling delay)."""
        self._look_for_controls = True
        self._look_for_work = True
        self._wakeup.set()

    def wake_for_drain(self) -> None:
        """Look for a drain request now (the heartbeat looks anyway, only later)."""
        self._look_for_drain = True
        self._wakeup.set()

    def offer(self, jobs: Sequence[Job]) -> None:
        """Jobs were just queued in this process: claim now if this worker can take one.

        Nothing else is looked at (no control intent, no drain): a submission in the
        embedded server costs the worker one claim.
        """
        self._offered = True
        if any(self._serves(job) for job in jobs):
            self._look_for_work = True
            self._wakeup.set()

    def _serves(self, job: Job) -> bool:
        queues = self.settings.queues
        return (
            job.state is JobState.QUEUED
            and (queues is None or job.queue in queues)
            and job.queue not in self._paused
            and job.route in self._routes
        )

    def queue_paused(self, name: str, paused: bool) -> None:
        """This process paused or resumed the queue ``name``: offers of its jobs are
        passed over, or taken again. Only offers: a claim reads the paused queues itself,
        and the heartbeat reads them again (another process may pause or resume), so a
        stale view is at worst an offer claimed for nothing or a job found at the next
        poll."""
        (self._paused.add if paused else self._paused.discard)(name)
        if not paused:
            self.wake()

    def _notified(self, payload: str | None) -> None:
        """A NOTIFY on the jobs channel: look only when it concerns this worker."""
        wanted = wakeups.wakeup_for(payload, self.name, self.settings.queues, self._routes)
        if wanted.drain:
            self.wake_for_drain()
        if wanted.controls:
            self._look_for_controls = True
        if wanted.work:
            self._look_for_work = True
        if wanted:
            self._wakeup.set()

    def hurry(self) -> None:
        """End a drain now: hand back what still runs without waiting any longer."""
        self._hurry.set()

    def stop(self, drain_timeout: float | None = None, *, reason: str = "stopped") -> None:
        """Stop claiming, let running jobs finish for a while, then hand the rest back.

        ``drain_timeout`` None uses the settings'. Safe to call again (it returns
        once the first call is done), but not from the worker's own loop thread.
        """
        with self._stop_lock:
            if self.stopped.is_set():
                return
            timeout = self.settings.drain_timeout if drain_timeout is None else drain_timeout
            ending = self._drain(timeout, reason)
            self._stop_loop()
            self._ends.close()  # no loop stores ends now: the runs store their own
            # After the loop stopped, so that a claim that was under way is handed back too.
            for run in self._live_runs():
                run.request(HandBack(f"worker {self.name} {reason}; {ending}"))
            self._hand_back_unlaunched(f"worker {self.name} {reason} before it started the job")
            deadline = time.monotonic() + 2 * self.settings.kill_grace + HAND_BACK_WAIT
            for run in list(self._runs.values()):
                run.join(timeout=max(0.0, deadline - time.monotonic()))
            self._tell_unreturned()
            self._unwatched.set()  # kept watching until now: nothing renews leases meanwhile
            if self._watchdog is not None:
                self._watchdog.join(timeout=WATCH_WAIT)
            _within(STOP_WRITE_WAIT, "unregistering the worker", self._unregister)
            self.stopped.set()

    def _hand_back_unlaunched(self, why: str) -> None:
        """Requeue the jobs a claim took as the worker began to stop (it started none of
        them), their attempt given back; left to their lease's lapse, each would lose one.
        Guarded as an end is: a job no longer this worker's attempt is left alone."""
        with self._fenced_lock:
            jobs = list(self._unlaunched)
        if not jobs:
            return
        now = self._clock()
        ends = [outcomes.requeued_end(job, now, why, noted=True) for job in jobs]

        def requeue() -> None:
            try:
                self.store.jobs.end_jobs(ends, now)
            except Exception:  # named among the jobs not handed back
                log.exception(
                    "could not hand back jobs it never started", extra={"worker": self.name}
                )
                return
            handed = {job.id for job in jobs}
            with self._fenced_lock:
                self._unlaunched = [job for job in self._unlaunched if job.id not in handed]

        _within(STOP_WRITE_WAIT, "handing back jobs it never started", requeue)

    def _tell_unreturned(self) -> None:
        """Name the jobs whose hand-back the database did not take before the worker
        stopped (it was away), and those the lease watch fenced since the database last
        answered: their processes are stopped, but the jobs stay running on this
        worker until their lease lapses, then are recovered as a lost worker's (an
        attempt spent: retried if one is left, else failed ``worker_lost``)."""
        left = self._live_runs()
        for run in left:  # one held in a write never got to its hand-back: stop it here
            run.fence()
        with self._fenced_lock:  # fenced since the database last answered: not handed back
            fenced = {*self._fenced_at, *(job.id for job in self._unlaunched)}
        self.unreturned = sorted({run.job.id for run in left} | fenced)
        if self.unreturned:
            log.error(
                "jobs not handed back: the database did not answer; their processes are "
                "stopped, and the jobs are recovered once their leases lapse",
                extra={"worker": self.name, "jobs": self.unreturned},
            )

    def _drain(self, timeout: float, reason: str) -> str:
        """Wait until the runs end or ``timeout`` passes; say which ended the wait."""
        self._draining.set()
        _within(
            STOP_WRITE_WAIT, "recording the drain", partial(self._set_state, WorkerState.DRAINING)
        )
        log.info(
            "worker draining",
            extra={
                "worker": self.name,
                "reason": reason,
                "timeout": timeout,
                "jobs": len(self._live_runs()),
            },
        )
        deadline = time.monotonic() + timeout
        while self._live_runs() and time.monotonic() < deadline:
            if self._hurry.wait(0.05):
                return "its drain was cut short"
        return f"its drain timeout ({timeout:g} s) passed"

    def _stop_loop(self) -> None:
        self._stopping.set()
        self._wakeup.set()
        deadline = time.monotonic() + THREADS_WAIT  # one wait for both: see stop_within
        for thread in (self._thread, self._listener):
            if thread is not None:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _unregister(self) -> None:
        if self.forgotten:  # the row is gone, or another worker's: not this one's to delete
            log.info("worker stopped", extra={"worker": self.name})
            return
        try:
            self.store.workers.unregister_worker(self.name)
        except Exception:
            log.exception("could not unregister worker", extra={"worker": self.name})
        log.info("worker stopped", extra={"worker": self.name})

    # -- the loop ----------------------------------------------------------
    def _loop(self) -> None:
        # The first jobs find their Python children started and their modules imported
        # (a worker that cannot start them claims anyway, after a while).
        self.runner.pool.wait_ready(POOL_READY_WAIT)
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                self._tick()
            except Exception as exc:  # the database may be down: keep going, it comes back
                self._tick_outage.failed(exc, trace=True)
                # Ends the tick did not get to: their runs store them (and keep trying).
                self._ends.hand_back(f"the worker's tick failed: {_message(exc)}")
            else:
                self._tick_outage.worked()
            self._wakeup.wait(self.settings.poll_interval)
        self._ends.close()  # the runs still going store their own ends

    def _tick(self) -> None:
        now = time.monotonic()
        # Whether only the clock (or a slot freed under limits) asks to look for work:
        # nothing announced any, so the store may look before it locks.
        idle_poll = not (self._look_for_work or self._full)
        if now >= self._poll_due:  # a poll: look at everything, whatever was asked
            self._poll_due = now + self.settings.poll_interval
            self._look_for_controls = self._look_for_work = True
        if self._look_for_controls:
            # Asked (woken by the API or NOTIFY) or polling: a tick that is only
            # about a freed slot does not read the intents.
            self._look_for_controls = False
            if self._runs:  # intents are for this worker's live jobs: none, none to read
                self._forward_controls()
        self._runs = {job_id: run for job_id, run in self._runs.items() if not run.over}
        self._released &= self._runs.keys()
        if time.monotonic() - self._last_heartbeat >= self.settings.heartbeat_interval:
            self._heartbeat()
            self._look_for_drain = True
            self._orphans.sweep_when_due()
        if self._look_for_drain:
            self._look_for_drain = False
            self._check_row()
        self._end_and_claim(idle_poll)

    def _end_and_claim(self, idle_poll: bool) -> None:
        """Store the ends that runs handed in, and claim for the free slots, in one commit.

        A run whose end is stored in the batch frees its slot with it. A freed slot claims
        only while the queue may hold more: once a claim came back short, or (with
        NOTIFY) filled its slots and saw nothing left waiting, new work announces
        itself (a submission here, NOTIFY, a dependency met, a due job promoted) or
        the next poll finds it. An announcement that arrives while every slot is busy
        keeps ``_look_for_work`` set until a slot frees. With max_running limits
        stored, a short claim may have been cut by a limit that a freed slot lifts:
        then every freed slot claims again. The edges out of the ends are settled in
        their commit, and a free slot takes the jobs that releases even when it would
        not look for others: a chain's next node starts in its upstream's commit.
        """
        if self._unseen is not None:  # before the slots are counted: it may fill some
            self._start_unseen()
        batch = self._ends.take()
        # The runs handing them in (a job claimed again with them runs anew in its slot).
        handing = [(waiting, self._runs.get(waiting.end.update.job_id)) for waiting in batch]
        ending = {waiting.end.update.job_id for waiting in batch}
        free = self.settings.concurrency - len(self._runs.keys() - self._released - ending)
        can_claim = free > 0 and not self._draining.is_set()
        try:
            if can_claim and (self._more or self._look_for_work):
                self._look_for_work = False
                self._claim_with(batch, free, idle_poll)
            elif can_claim and batch and self._ends.settles:
                # Nothing to look for, unless the ends' settling releases a job.
                self._claim_with(batch, free, idle_poll=True, look=False)
            else:
                self._ends.flush(batch)
        finally:
            for waiting in batch:  # a step before the flush failed: the run stores its end
                if not waiting.done.is_set():
                    waiting.tell(error=Stalled("the worker's loop could not store it"))
            # A run whose end is stored is done with its slot (not yet with its thread).
            self._released |= {
                waiting.end.update.job_id
                for waiting, run in handing
                if _stored(waiting) and self._runs.get(waiting.end.update.job_id) is run
            }
            self._ends.report()  # settling what waited for the ended jobs, once theirs started

    def _claim_with(
        self, batch: list[Waiting], free: int, idle_poll: bool, *, look: bool = True
    ) -> None:
        """Claim for ``free`` slots, in the commit of the ends of ``batch`` if it can;
        without ``look``, only if the settling of those ends released a job (and then
        as any claim, by priority)."""
        now, leased = self._clock(), time.monotonic()  # the lease runs at least from then
        try:
            # Nothing announced work (idle_poll): the claim reads before it locks, alone,
            # unless the ends' settling (under the lock they take) released a job, when
            # it goes with them.
            order = None if idle_poll and not batch else self._order(free, now)
            claimed = partial(self._claimed, free, leased)
            flushed = self._ends.flush(batch, order, claimed, released_only=idle_poll)
            if flushed is Flushed.CLAIMED:
                return
            # No end to go with, or the ends went without it: the slots of those not
            # stored are not free.
            free -= sum(not _stored(waiting) for waiting in batch)
            if flushed is Flushed.FAILED:  # the claim failed with the ends
                self._unseen = self._unseen or self._doubt(now, leased)
                free -= self._start_unseen()
            if free > 0 and look:
                self._claimed(free, leased, self._claim(free, idle_poll=idle_poll))
        except Exception:
            self._look_for_work = True  # the next tick tries again
            self._unseen = self._unseen or self._doubt(now, leased)
            raise

    def _doubt(self, now: datetime, leased: float) -> Unseen:
        """A claim begun at ``now`` may have committed unseen; the attempts run so far."""
        known = frozenset((job_id, run.job.attempt) for job_id, run in self._runs.items())
        return Unseen(now, leased, known)

    def _start_unseen(self) -> int:
        """Start the jobs that a failed claim took all the same; how many.

        A claim whose connection broke after its commit took its jobs without the
        worker hearing of them: they are marked running here, and nothing would run
        them until their lease lapsed, which costs them an attempt (the last one of a
        job without retries). After any failed claim the worker looks for them, before
        it claims again: its own running jobs started since that claim began, at an
        attempt it never ran, whose lease has not lapsed (a namesake that died before
        has none: names are unique among live workers). A worker that no longer claims
        (draining, stopping) leaves them to their lease.
        """
        assert self._unseen is not None
        unseen = self._unseen
        if not self.claiming:
            self._unseen = None
            return 0
        now, since = self._clock(), unseen.since - UNSEEN_CLOCK_SLACK
        try:
            live = self.store.queue.live_jobs_on_host(self.host)
        except Exception as exc:
            if not outage.unavailable(exc):  # it would fail again: claim on without the look
                self._unseen = None
            raise  # else the next tick looks again
        self._unseen = None
        found = [
            job
            for job in live
            if job.worker == self.name
            and job.state is JobState.RUNNING
            and job.started_at is not None
            and job.started_at >= since
            and (job.id, job.attempt) not in unseen.known
            and (job.id not in self._runs or self._runs[job.id].job.attempt != job.attempt)
            and job.lease_expires_at is not None
            and job.lease_expires_at > now
        ]
        for job in found:
            log.warning(
                "starting a job claimed in a commit the worker did not see",
                extra={"job": job.id, "worker": self.name, "attempt": job.attempt},
            )
            self._launch(job, unseen.leased)
        return len(found)

    def _claimed(self, free: int, leased: float, claimed: Claimed) -> None:
        """Start what a claim for ``free`` slots took; note whether to claim again."""
        self._full = claimed.more  # it filled its slots, and more jobs wait
        # Without NOTIFY (SQLite, MariaDB) a job queued by another process is not
        # announced: after a claim that filled its slots, a freed slot still looks,
        # reading first (which takes no lock on SQLite) since little is likely.
        filled = len(claimed.jobs) == free
        self._more = self._full or self._limited or (filled and self._listener is None)
        for job in claimed.jobs:
            self._launch(job, leased)

    def _forward_controls(self) -> None:
        """Hand the recorded intents to the runs, and stop those whose job is no longer
        this worker's: a forced removal deletes a live job, which has no row left to
        record a kill on. The runs as they are before the read: one adopted meanwhile
        (the sweeper's thread) was not asked about (see :meth:`_heartbeat`)."""
        asked = list(self._runs)
        live = self.store.queue.live_controls(self.name)
        for job_id in asked:
            run = self._runs[job_id]
            if job_id not in live:
                if run.is_alive():  # removed, or gone elsewhere: write nothing more
                    log.info("job gone; stopping its run", extra={"job": job_id})
                    run.request(Abandon())
            elif (control := live[job_id]) is not None:
                run.request(control)

    def _claim(self, limit: int, *, idle_poll: bool = False) -> Claimed:
        now = self._clock()
        worker, host, queues, _, lease_until, tags = self._order(limit, now)
        return self.store.queue.claim_jobs(
            worker, host, queues, limit, now, lease_until, tags=tags, idle_poll=idle_poll
        )

    def _order(self, limit: int, now: datetime | None = None) -> ClaimOrder:
        lease_until = self._lease_until(now or self._clock())
        return ClaimOrder(self.name, self.host, self.settings.queues, limit, lease_until, self.tags)

    def _launch(self, job: Job, leased: float) -> None:
        """Run ``job``, whose lease runs from the monotonic time ``leased``."""
        if self._stopping.is_set():
            # A claim under way as the stop began committed after all: start nothing.
            # stop() hands it back, or (a claim that hung past its wait) names it
            # unreturned: the job comes back when its lease lapses.
            with self._fenced_lock:
                self._unlaunched.append(job)
            return
        run = JobRun(job, self.store, self.runner, self._run_settings)
        run.leased = leased
        self._runs[job.id] = run
        self._released.discard(job.id)  # its earlier attempt's slot, if it ran here before
        run.start()

    def _follow(self, job: Job) -> None:
        """Follow ``job``, adopted from a dead worker: it runs on (on Slurm) already."""
        run = JobRun(job, self.store, self.runner, self._run_settings, adopted=True)
        self._runs[job.id] = run
        run.start()

    def _heartbeat(self) -> None:
        now, renewed = self._clock(), time.monotonic()
        # Only the jobs it runs: a dead namesake's, elsewhere, run out their lease and
        # are recovered like any lost worker's. A fenced run's too: nothing runs it.
        # The runs as they are now: the sweeper's thread may add an adopted one meanwhile,
        # which this renewal did not ask about and must not abandon. Their ids, not the
        # runs: a failed renewal's traceback, logged, would keep them alive past their end.
        asked = list(self._runs)
        runs = [job_id for job_id in asked if not self._runs[job_id].fenced]
        owned = set(self.store.queue.renew_leases(self.name, now, self._lease_until(now), runs))
        self._last_heartbeat = time.monotonic()
        with self._fenced_lock:  # the database answered: the scheduler recovers those left out
            renewing = set(runs)
            self._fenced_at = {
                job: at for job, at in self._fenced_at.items() if at > renewed or job in renewing
            }
        for job_id in owned:
            if (run := self._runs.get(job_id)) is not None and run.leased is not None:
                run.leased = renewed
        self._limited = bool(self.store.limits.read())
        if self._offered:  # an embedded worker: another process may pause or resume too
            self._paused = self.store.queue.paused_queues()
        for job_id in asked:
            run = self._runs[job_id]  # the loop's thread alone takes runs out
            if run.is_alive() and job_id not in owned:
                # Deleted, or our lease expired and the job went elsewhere: never finish it twice.
                run.request(Abandon())

    def _watch_leases(self) -> None:
        """Fence, from a thread of its own, the runs whose lease was not renewed in time.

        The loop renews the leases at its heartbeat, but a statement that stalls holds
        the loop with it: a database or a proxy that takes the connection and does not
        answer, a row lock held elsewhere, a connection cut mid-statement that the
        client sees only at its read timeout. Past the lease another worker may start
        the job's next attempt, so this thread, which waits for no database, stops the
        processes then rather than run them beside it.
        """
        period = self._watch_period
        while not self._unwatched.wait(period):
            try:
                self._fence_lapsed()
            except Exception:  # a bug: say so, and keep watching
                log.exception("the lease watch failed", extra={"worker": self.name})

    @property
    def _watch_period(self) -> float:
        return min(LEASE_WATCH, self.settings.lease_timeout / 4)

    def _fence_lapsed(self) -> None:
        """Stop the runs whose lease lapses before the next look, unrenewed since it was
        set (claimed or renewed).

        Cut off from the database, the worker cannot learn that its jobs went
        elsewhere; but past the lease they may have, so it kills their processes a
        look's period before (the scheduler that recovers the job reads the lease
        the worker stored, which ran from before the statement that set it). A run
        that was already storing its end may still do so; any other writes nothing
        more. When the lease was in fact renewed late (a heartbeat longer than the
        lease), the fenced job is no longer renewed, and is recovered once its lease
        lapses, as a lost worker's is.
        """
        now = time.monotonic()
        limit = self.settings.lease_timeout - self._watch_period
        for run in list(self._runs.values()):  # the loop's: copied at once
            if run.leased is None or now - run.leased <= limit:
                continue
            if run.fence():
                with self._fenced_lock:  # from now: a heartbeat under way may renew it yet
                    self._fenced_at[run.job.id] = time.monotonic()
                log.warning(
                    "lease not renewed in time; stopping the job's processes",
                    extra={"job": run.job.id, "worker": self.name},
                )

    def _check_row(self) -> None:
        """Start draining, from a thread of its own, when the API asked for it; stop at
        once when the worker's row is gone or another process's (read after each
        heartbeat, whose write of a missing row changes nothing and says nothing)."""
        if self._draining.is_set():
            return
        info = self.store.workers.get_worker(self.name)
        if info is None or (info.host, info.pid) != (self.host, os.getpid()):
            self._stop_forgotten(info)
        elif info.drain_requested_at is not None:
            self._stop_in_background(info.drain_timeout, "drained on request")

    def _stop_forgotten(self, info: WorkerInfo | None) -> None:
        """Stop, handing back at once what still runs: the worker was forgotten (a
        lost worker's row removed) while it ran, or a worker of its name started since.

        Claiming on while unlisted, it could be neither seen nor drained, and a namesake would
        run beside it. The row, if any, is not this process's: nothing writes to it.
        """
        if info is None:
            self.forgotten = f"worker {self.name} was forgotten while it ran"
        else:
            self.forgotten = (
                f"worker name {self.name!r} was taken by pid {info.pid} on {info.host} "
                "while this worker ran"
            )
        log.error("%s; stopping", self.forgotten, extra={"worker": self.name})
        self._stop_in_background(0.0, "stopped: it was forgotten")

    def _stop_in_background(self, timeout: float | None, reason: str) -> None:
        self._draining.set()  # no claim from this tick on
        threading.Thread(
            target=self.stop,
            args=(timeout,),
            kwargs={"reason": reason},
            name=f"worker-drain-{self.name}",
            daemon=True,
        ).start()

    def _set_state(self, state: WorkerState) -> None:
        if self.forgotten:  # the row is gone, or another worker's
            return
        try:
            self.store.workers.set_worker_state(self.name, state.value)
        except Exception:  # only shown by the API: the drain goes on without it
            log.warning("could not record the worker's state", extra={"worker": self.name})

    def _lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.lease_timeout)

    def _live_runs(self) -> list[JobRun]:
        return [run for run in list(self._runs.values()) if run.is_alive()]


def _within(seconds: float, doing: str, call: Callable[[], None]) -> None:
    """``call()`` on a thread of its own, waited for ``seconds`` at most: a worker that
    stops does not hang on a database that takes the statement and does not answer."""
    try:
        outage.in_background(call, "worker-stopping").result(seconds)
    except TimeoutError:
        log.warning("%s: no answer from the database within %g s; going on", doing, seconds)


def _stored(waiting: Waiting) -> bool:
    """Whether ``waiting``'s end was stored here (or refused as not its attempt's)."""
    return waiting.done.is_set() and waiting.error is None


def _message(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type's name when it has none."""
    return outage.first_line(exc) or type(exc).__name__
