"""What dead workers of this host left behind: their live jobs and their processes.

A worker killed (``kill -9``, a crash) leaves its jobs live on their rows and their
processes running, in sessions of their own. The next worker of the host ends those
jobs as lost (or adopts one that runs on without it, a Slurm job) when it starts, and
looks for the processes when it starts and every half lease timeout after.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

import psutil

from jobyard import outcomes
from jobyard.models import Job, WorkerInfo
from jobyard.runner.local import kill_job_processes
from jobyard.runner.procs import kill_processes, pid_in_use, processes_of_workers
from jobyard.store.protocol import Storage
from jobyard.worker.attempt import run_token, token_parts

log = logging.getLogger(__name__)

CLOCK_SLACK = 60.0  # seconds a process's start time may move with a stepped clock


class Orphans:
    """A worker's look for what dead workers of its host left: it recovers their jobs,
    adopts those that run on without them, and kills their processes."""

    def __init__(
        self,
        store: Storage,
        *,
        worker: str,
        host: str,
        lease_timeout: float,
        clock: Callable[[], datetime],
        running: Callable[[], Collection[int]],
        follow: Callable[[Job], None],
        on_lost: Callable[[Job], None],
        on_terminal: Callable[[int], None],
    ) -> None:
        """``running`` gives the ids of the jobs the worker runs; ``follow`` runs a job
        it adopted; ``on_lost`` and ``on_terminal`` hear of a dead worker's job ended
        for good here."""
        self._store = store
        self._worker = worker
        self._host = host
        self._lease_timeout = lease_timeout
        self._clock = clock
        self._running = running
        self._follow = follow
        self._on_lost = on_lost
        self._on_terminal = on_terminal
        self._next_sweep = 0.0  # monotonic time of the next look for dead workers' processes
        self._sweeper: threading.Thread | None = None
        self._swept: set[tuple[str, int, datetime]] = set()  # dead workers found clean

    def recover(self, prior: WorkerInfo | None = None) -> None:
        """Jobs left live on this host by a worker that died: kill their processes, end them.

        Without this, a ``kill -9`` of the server would leave the job processes
        running (they are in their own sessions) until the lease expires. Only the
        processes that worker started are killed (``prior`` is the row of this worker's
        dead namesake): another database's worker on this host may run a job of the
        same token.
        """
        now = self._clock()
        for job in self._store.queue.live_jobs_on_host(self._host):
            if job.id in self._running():
                continue
            if job.worker != self._worker and self._worker_alive(job.worker):
                continue
            if adoptable(job):
                self._adopt(job, now)
                continue
            killed = _kill_orphan(job, self._owner_of(job, prior))
            why = f"its worker {job.worker} died (found by {self._worker} at its start)"
            [written] = self._store.jobs.end_jobs([outcomes.lost_end(job, now, why)], now)
            if written is not None and written.job.state.terminal:
                self._on_lost(written.job)
                self._on_terminal(written.job.id)
            log.warning(
                "recovered job of a dead worker",
                extra={"job": job.id, "dead_worker": job.worker, "processes_killed": killed},
            )

    def _owner_of(self, job: Job, prior: WorkerInfo | None) -> int | None:
        """The pid of the dead worker whose job ``job`` is, when its row says."""
        if job.worker == self._worker:
            return prior.pid if prior is not None and prior.host == self._host else None
        row = self._store.workers.get_worker(job.worker) if job.worker else None
        return row.pid if row is not None and row.host == self._host else None

    def sweep(self, prior: WorkerInfo | None = None) -> int:
        """Kill the job processes that dead workers of this host left running; how many.

        A worker killed (``kill -9``, a crash) leaves its jobs' processes running: they
        are in sessions of their own. Its jobs are recovered (by this host's next worker,
        or elsewhere once their leases lapse), retried or ended, but nothing on another
        host can stop those processes, which would run on beside the next attempt, or
        after the job was killed. So a worker looks for them when it starts and every half
        lease timeout (before such a job's lease lapses and it runs again), on a thread of
        its own (reading ``/proc`` can block): a process of this pid namespace whose
        ``JOBYARD_WORKER_PID`` is that of a worker of this database, on this host, whose
        pid no process has any more, and whose ``JOBYARD_JOB_TOKEN`` names that worker;
        unless its job was taken over since (a cluster's job, adopted). A dead worker
        found clean once is not looked for again. ``prior`` is the row this worker's name
        had before it registered (a dead namesake's).
        """
        rows = [row for row in self._store.workers.list_workers() if row.name != self._worker]
        dead: dict[int, set[str]] = {}
        rows_of: dict[int, list[tuple[str, int, datetime]]] = {}
        for row in [*rows, *([prior] if prior is not None else [])]:
            seen = (row.name, row.pid, row.started_at)
            if row.host != self._host or row.pid == os.getpid() or seen in self._swept:
                continue
            # A dead worker's pid that another process took since: not swept, to be safe.
            if not pid_in_use(row.pid):
                dead.setdefault(row.pid, set()).add(row.name)
                rows_of.setdefault(row.pid, []).append(seen)
        if not dead:
            return 0
        found = [
            (owner, token, parts, procs)
            for (owner, token), procs in processes_of_workers(dead).items()
            # Not another database's worker (nor a token of another shape).
            if (parts := token_parts(token)) is not None and parts[0] in dead[owner]
        ]
        for owner in dead.keys() - {owner for owner, _, _, _ in found}:
            self._swept.update(rows_of[owner])  # clean: none of its processes can appear
        taken = self._taken_over([parts for _, _, parts, _ in found])
        killed = 0
        for _, token, parts, procs in found:
            if parts in taken:
                continue
            killed += (count := kill_processes(procs))
            log.warning(
                "killed the processes a dead worker left running",
                extra={"worker": self._worker, "token": token, "killed": count},
            )
        return killed

    def _taken_over(self, attempts: list[tuple[str, int, int]]) -> set[tuple[str, int, int]]:
        """The ``(worker, job id, attempt)`` whose job, live, another worker has taken
        over at that attempt (a cluster's job that runs on, adopted): not orphans."""
        ids = {job_id for _, job_id, _ in attempts}
        jobs = {job.id: job for job in self._store.jobs.jobs_by_id(ids)} if ids else {}
        taken = set()
        for worker, job_id, attempt in attempts:
            job = jobs.get(job_id)
            if job is None or not job.state.live or job.attempt != attempt:
                continue  # gone, ended, or at another attempt: the processes are orphans
            if job.worker != worker:  # the same attempt, run on by another worker
                taken.add((worker, job_id, attempt))
        return taken

    def sweep_when_due(self) -> None:
        """:meth:`sweep_in_background` once half a lease timeout passed since the last."""
        if time.monotonic() >= self._next_sweep:
            self.sweep_in_background()

    def sweep_in_background(self, prior: WorkerInfo | None = None) -> None:
        """:meth:`sweep` on its thread, unless the last one still runs."""
        if self._sweeper is not None and self._sweeper.is_alive():
            return
        self._next_sweep = time.monotonic() + self._lease_timeout / 2
        self._sweeper = threading.Thread(
            target=self._sweep_safely, args=(prior,), name=f"sweep-{self._worker}", daemon=True
        )
        self._sweeper.start()

    def _sweep_safely(self, prior: WorkerInfo | None) -> None:
        try:
            self.sweep(prior)
        except Exception:  # the database may be away: the next sweep tries again
            log.warning("could not look for dead workers' processes", exc_info=True)

    def _adopt(self, job: Job, now: datetime) -> None:
        """Take over a job that runs on without its dead worker (a Slurm job) and follow it.

        The take-over is conditional on the dead worker and attempt still being on the
        row (two workers starting at once adopt it once); a job the scheduler found
        lost meanwhile is left to its retry, which cancels the Slurm job first.
        """
        lease_until = now + timedelta(seconds=self._lease_timeout)
        values = {"worker": self._worker, "lease_expires_at": lease_until}
        jobs = self._store.jobs
        if not jobs.append_output(job.id, [], [], values, worker=job.worker, attempt=job.attempt):
            return  # another worker took it over first
        adopted = jobs.get_job(job.id)
        if adopted is None or not adopted.state.live or adopted.worker != self._worker:
            return  # ended or found lost meanwhile: not ours to run, nor to fail
        self._follow(adopted)
        log.warning(
            "adopted job of a dead worker",
            extra={
                "job": job.id,
                "dead_worker": job.worker,
                "slurm_job": job.details.get("slurm_job_id"),
            },
        )

    def _worker_alive(self, name: str | None) -> bool:
        info = self._store.workers.get_worker(name) if name else None
        if info is None or info.host != self._host:
            return info is not None  # another host's worker: its lease decides
        return _process_of(info)

    def still_running(self, prior: WorkerInfo, now: datetime) -> bool:
        """Whether the worker last registered under this name still runs: on this host,
        its process (this one too, when it registered since this process started: another
        worker object of it; not a dead namesake that had this pid, as a container's
        process 1 has each time); elsewhere, as long as its heartbeat is younger than
        its lease."""
        if prior.host == self._host:
            return _process_of(prior)
        return now - prior.heartbeat_at < timedelta(seconds=prior.lease_timeout)


def _process_of(info: WorkerInfo) -> bool:
    """Whether the process ``info`` names runs on this host: its pid, started before the
    worker registered, and not dead (a zombie). A process that took the pid later (a
    container's process 1 does, each time it starts) is not it. A process's start time is
    counted from the kernel's boot time, which moves when the clock is stepped: a minute
    of slack keeps a live worker live through such a step (a namesake restarted within
    that minute of its predecessor's start is refused, and may start again)."""
    try:
        process = psutil.Process(info.pid)
        started = process.create_time()
        if process.status() == psutil.STATUS_ZOMBIE:  # dead, its parent has yet to reap it
            return False
    except psutil.Error:
        return False
    return info.started_at.timestamp() > started - CLOCK_SLACK


def adoptable(job: Job) -> bool:
    """Whether ``job`` runs on without its worker, and this attempt of it was recorded:
    the Slurm job its row names was submitted by the attempt now on the row."""
    details = job.details
    return details.get("executor") == "slurm" and details.get("token") == run_token(job)


def _kill_orphan(job: Job, owner: int | None) -> int:
    killed = kill_job_processes(run_token(job), owner=owner)
    if job.pid:
        try:
            leader = psutil.Process(job.pid)
            started = job.started_at.timestamp() if job.started_at else 0.0
            if "jobyard" in " ".join(leader.cmdline()) and leader.create_time() <= started + 5:
                os.killpg(job.pid, signal.SIGCONT)
                os.killpg(job.pid, signal.SIGKILL)
                killed += 1
        except (psutil.Error, ProcessLookupError, PermissionError):
            pass
    return killed
