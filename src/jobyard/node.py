"""One jobyard process: its store, catalogue and manager, and optionally a worker and the scheduler.

This is the composition root: every part gets what it needs through its
constructor here, and nothing is a global.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from sqlalchemy.engine import make_url

from jobyard import metrics
from jobyard.access.accounts import FIRST_ADMIN, Accounts
from jobyard.access.audit import Audit
from jobyard.access.gate import Gate
from jobyard.clock import utcnow
from jobyard.config import Config
from jobyard.dependencies import MET, Dependencies
from jobyard.events.hub import Hub
from jobyard.jobtypes.catalog import Catalog
from jobyard.limits import Key, Scope, limits_of
from jobyard.manager import JobManager
from jobyard.models import Ended, Job
from jobyard.notify.notifier import Notifier
from jobyard.notify.outbox import Outbox
from jobyard.retention.pruner import Pruner
from jobyard.roster import Roster
from jobyard.runner.executors import Executors
from jobyard.runner.local import Runner
from jobyard.schedules.book import ScheduleBook
from jobyard.schedules.firing import Firing
from jobyard.schedules.scheduler import Scheduler
from jobyard.settings import Settings
from jobyard.store import Store, outage
from jobyard.store.engine import installation, spelled_installation
from jobyard.worker.loop import Worker, WorkerSettings, default_worker_name
from jobyard.workflows.runs import Runs

log = logging.getLogger(__name__)


def cancel_executor_job(job: Job) -> None:
    """A job lost for good whose attempt runs on a cluster: cancel it there (the Slurm
    package is imported only when such a job exists)."""
    if job.details.get("executor") == "slurm":
        from jobyard.runner.slurm.lost import cancel_in_background

        cancel_in_background(job.details)


class Node:
    def __init__(
        self,
        settings: Settings,
        config: Config,
        *,
        worker: bool = True,
        scheduler: bool = True,
        api: bool = True,
    ) -> None:
        self.settings = settings
        self.config = config
        self.store = Store(settings.database_url)
        self.catalog = Catalog(
            self.store,
            config.job_types,
            writable=config.api_job_types,
            queues=config.declared_queues,
        )
        self.deps = Dependencies(self.store, wake=self.wake)
        self.worker: Worker | None = self._worker() if worker else None
        self.manager = JobManager(
            self.store,
            self.catalog,
            self.deps,
            wake=self.wake,
            on_terminal=self.job_ended,
            on_restart=self.job_restarted,
            on_queued=self.queued,
            before_remove=self.job_removing,
        )
        self.runs = Runs(self.manager, config.workflows)
        self._notices = Notifier(self.store, config.notifications)  # for removals
        self.schedules = ScheduleBook(self.store, config.schedules, self.catalog, config.workflows)
        self.scheduler: Scheduler | None = None
        if scheduler:
            self.scheduler = Scheduler(
                self.store,
                interval=min(settings.poll_interval, 1.0),
                lease_check_every=settings.lease_timeout / 8,
                on_ready=self.wake,
                deps=self.deps,
                on_terminal=self.job_ended,
                firing=Firing(self.manager, self.runs, self.schedules),
                on_lost=cancel_executor_job,
            )
        self.hub = Hub(self.store)
        self.ping = outage.Ping(self.store.ping)  # /readyz: one question at a time
        self.metrics = metrics.registry(
            self.store, queues=config.queues, channels=config.notifications.channels
        )
        self.outbox: Outbox | None = None
        self.pruner: Pruner | None = None
        if self.scheduler is not None:
            timer = self.scheduler
            self.metrics.register(metrics.LeadCollector(lambda: timer.leads))
            self.outbox = Outbox(self.store, config.notifications, leading=lambda: timer.leads)
            self.pruner = Pruner(
                self.store.retention,
                config.retention,
                leading=lambda: timer.leads,
                interval=settings.retention_interval,
            )
        self.roster = Roster(self.store, wake=self.wake_for_drain)
        self.audit = Audit(self.store, utcnow)
        self.accounts = Accounts(self.store, utcnow)
        self.gate = Gate(self.store, self.audit, utcnow)
        self.api = api

    def _worker(self) -> Worker:
        settings = self.settings
        pool = settings.python_pool
        local = Runner(
            python_pool=settings.concurrency if pool is None else pool,
            python_path=[str(self.config.base_dir)],
            preload=self.config.preload_modules(),
            pass_env=self.config.pass_env,
        )
        url = settings.database_url
        runner = Executors(local, install=installation(url), formerly=[spelled_installation(url)])
        worker_settings = WorkerSettings(
            name=settings.worker_name or default_worker_name(),
            queues=settings.queues,
            tags=settings.tags or (),
            concurrency=settings.concurrency,
            kill_grace=settings.kill_grace,
            lease_timeout=settings.lease_timeout,
            heartbeat_interval=settings.heartbeat_interval,
            poll_interval=settings.poll_interval,
            drain_timeout=settings.drain_timeout,
            log_cap=settings.log_cap,
        )
        return Worker(
            self.store,
            runner,
            worker_settings,
            on_terminal=self.job_ended,
            on_ended=self.ends_stored,
            on_lost=cancel_executor_job,
            settle=MET,
        )

    def job_ended(self, job_id: int) -> None:
        """A job ended for good: start or block what waits for it, update its workflow run."""
        self.jobs_ended([job_id])

    def jobs_ended(self, job_ids: list[int]) -> None:
        """Jobs ended for good (say, in one commit): settle them together, then their runs."""
        self.deps.settle(job_ids)
        self.runs.jobs_ended(self.store.jobs.jobs_by_id(job_ids))

    def ends_stored(self, ended: Sequence[Ended]) -> None:
        """The worker stored these ends in one transaction: settle what still waits for
        them (most were settled in it) and their workflow runs; a job that neither waits
        for costs nothing here."""
        self.deps.settle([e.job.id for e in ended if e.awaited])
        # A run whose end left a node of it live keeps its state: that node's end looks.
        self.runs.jobs_ended(
            [e.job for e in ended if e.job.workflow_run is not None and not e.run_live]
        )

    def job_restarted(self, job: Job) -> None:
        """A job was restarted as ``job``: its workflow run, if it had ended, runs again."""
        self.runs.job_restarted(job)

    def job_removing(self, job: Job) -> None:
        """``job`` is about to be removed, and its events with it: the notifications they
        make are made now, not lost when the job goes before the notifier reads them."""
        self._notices.before_removal(job.id, utcnow())

    def queued(self, jobs: Sequence[Job]) -> None:
        """Jobs were submitted here: the in-process worker claims at once if it takes one."""
        if self.worker is not None:
            self.worker.offer(jobs)

    def wake(self) -> None:
        """Something changed: let the in-process worker look now instead of at its next poll."""
        if self.worker is not None:
            self.worker.wake()

    def set_queue_paused(self, name: str, paused: bool) -> None:
        """Pause or resume the queue ``name``; the in-process worker passes its jobs'
        offers over, or takes them again (and looks for them now)."""
        self.store.queue.set_queue_paused(name, paused, utcnow())
        if self.worker is not None:
            self.worker.queue_paused(name, paused)

    def wake_for_drain(self) -> None:
        """A drain was asked: let the in-process worker look for it now."""
        if self.worker is not None:
            self.worker.wake_for_drain()

    def sync_limits(self) -> None:
        """Write the configuration's ``max_running`` limits where every worker reads them.

        A process started with a configuration file does it, and so does every
        API node: ``serve`` without a file clears the limits a file set before. A
        worker started without a file leaves them alone.
        """
        if self.config.path is None and not self.api:
            return
        config = self.config
        owned: set[Key] = {(Scope.QUEUE, name) for name in config.queues}
        owned |= {(Scope.TYPE, name) for name in config.job_types}
        if self.store.limits.sync_limits(
            limits_of(config.queues, config.job_types), owned, utcnow()
        ):
            log.info("limits updated from the configuration")

    def start_paused(self) -> None:
        """Pause the queues the configuration says start ``paused`` that have no state
        yet; a queue once paused or resumed (the API, the CLI) keeps its state."""
        names = [name for name, queue in self.config.queues.items() if queue.paused]
        if names and (paused := self.store.queue.start_paused(names, utcnow())):
            log.info("queues paused by the configuration", extra={"queues": sorted(paused)})

    def start(self) -> None:
        self.store.migrate()
        self.sync_limits()
        self.start_paused()
        if self.api or self.scheduler is not None:
            self.schedules.read_file(utcnow())
        if self.api:
            self._first_admin()
            self.hub.start()
        if self.worker is not None:
            # Before the scheduler: the worker's start recovers the jobs its dead namesake
            # left (a crash), whose leases may not have lapsed yet; a schedule whose last
            # run was one would count it as going, and skip the fire it owes.
            self.worker.start()
        if self.scheduler is not None:
            self.scheduler.start()
        if self.outbox is not None:
            self.outbox.start()
        if self.pruner is not None:
            self.pruner.start()
        log.info(
            "node started",
            extra={
                "database": self.store.dialect,
                "worker": self.worker.name if self.worker else None,
                "job_types": len(self.config.job_types),
            },
        )

    def _first_admin(self) -> None:
        """On a database without users, create ``admin``; a made-up password is shown once."""
        given = self.settings.admin_password
        made = self.accounts.first_admin(given.get_secret_value() if given else None)
        if made is not None:
            # Straight to the console, not the log: a log file would keep it in clear.
            where = ""
            if self.settings.database_url != Settings.model_fields["database_url"].default:
                url = make_url(self.settings.database_url).render_as_string(hide_password=True)
                where = f" --database-url '{url}'"
            print(
                f"\njobyard: created the user {FIRST_ADMIN!r} with the password\n\n    {made}\n\n"
                "It is shown this once. Log in with it, then change it with\n"
                f"`jobyard user set-password {FIRST_ADMIN}{where}`.\n",
                file=sys.stderr,
                flush=True,
            )

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker.runner.close()
        if self.outbox is not None:
            self.outbox.stop()
        if self.pruner is not None:
            self.pruner.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.api:
            self.hub.stop()
        self.store.close()
