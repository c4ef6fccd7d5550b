"""The notifier: reads the durable event log and puts what someone must hear into the outbox.

It runs in one process at a time (the scheduler leader) and keeps its place in
the ``cursors`` table, moved in the same transaction as the messages it makes,
so a crash or a failover neither loses an event nor makes a message twice.
Event ids can commit out of order; like the live feed, it waits a little for a
missing id before it steps over it (a rolled-back transaction leaves a gap
forever).

Which events make notifications:

========================  ============================================
event in the log          notification
========================  ============================================
job ended ``failed``      ``failed`` (``worker_lost`` when its worker was lost)
job ended ``succeeded``   ``succeeded``
job ``upstream_failed``   ``upstream_failed``
job requeued, worker lost ``worker_lost``
``sla`` event             ``sla_breach``
``workflow_finished``     ``workflow_failed`` / ``workflow_succeeded``
========================  ============================================

Each becomes one ``pending`` message per channel whose rules match; one that
no rule wants is still ``recorded`` when it is a problem (not for successes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from jobyard.clock import utcnow
from jobyard.events.gaps import GapWait
from jobyard.events.records import (
    FeedEvent,
    JobRescheduled,
    JobTerminated,
    SlaBreached,
    WorkflowRunFinished,
    WorkflowRunReopened,
    WorkflowRunStarted,
)
from jobyard.models import EventKind, Job, RunState
from jobyard.notify.channels import NotificationConfig
from jobyard.notify.message import LOG_TAIL, JobInfo, Notice
from jobyard.outcomes import Reason
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.notes import PENDING, RECORDED

log = logging.getLogger(__name__)

CURSOR = "notifier"
WORKFLOWS_KEPT = 10_000  # run ids whose workflow name is remembered
CURSOR_EVERY = timedelta(seconds=5)  # the longest the stored cursor lags when nothing is made
KINDS = (EventKind.STATE.value, EventKind.SLA.value, EventKind.WORKFLOW.value)
BATCH = 2000
GAP_GRACE = 5.0  # seconds to wait for a missing event id before stepping over it
FIRST_LOOK_BACK = timedelta(minutes=5)  # a new database: events this recent are still told
RECORD_ALWAYS = frozenset(
    {"failed", "worker_lost", "sla_breach", "upstream_failed", "workflow_failed"}
)
# The job ends that make a notification of their state's name (:func:`notification_names`).
ENDS = (JobState.FAILED.value, JobState.SUCCEEDED.value, JobState.UPSTREAM_FAILED.value)


def notification_names(item: FeedEvent) -> list[str]:
    """The notifications an event makes, most specific first (pure)."""
    match item.event.record:
        case SlaBreached():
            return ["sla_breach"]
        case WorkflowRunFinished(state=RunState.FAILED):
            return ["workflow_failed"]
        case WorkflowRunFinished(state=RunState.SUCCEEDED):
            return ["workflow_succeeded"]
        case JobTerminated(state=JobState.FAILED, reason=Reason.WORKER_LOST):
            return ["worker_lost", "failed"]
        case JobTerminated(state=JobState.FAILED | JobState.SUCCEEDED | JobState.UPSTREAM_FAILED):
            return [item.event.record.state.value]
        case JobRescheduled(reason=Reason.WORKER_LOST) | JobTerminated(reason=Reason.WORKER_LOST):
            return ["worker_lost"]
    return []


class Notifier:
    def __init__(
        self,
        store: Store,
        config: NotificationConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
        workflow_of: Callable[[int], str | None] | None = None,
        gap_grace: float = GAP_GRACE,
    ) -> None:
        self.store = store
        self.config = config
        self._clock = clock
        self._workflow_of = workflow_of or self._run_workflow
        self.position: int | None = None
        self._stored: int | None = None  # the cursor as last written
        self._cursor_due = datetime.min.replace(tzinfo=UTC)
        self._gaps = GapWait(gap_grace, transactions=store.events.transactions())
        # Of a job's state events only its ends can notify, and a success only when some
        # rule asks for it: the rest (every job's created, claimed, …) are not read.
        wanted = RECORD_ALWAYS.union(*(rule.events for rule in config.rules))
        self._ends = [state for state in ENDS if state in wanted]
        self._workflows: dict[int, str | None] = {}  # run id → its workflow's name

    def run_once(self, now: datetime) -> int:
        """Turn the new events into messages; returns how many rows were made."""
        if self.position is None:
            self.position = self._start_position(now)
        made = 0
        while True:
            upto = self._safe_upto()
            if upto <= self.position:
                self._catch_up_cursor(now)
                return made
            items = self.store.monitor.events_between(
                self.position, upto, KINDS, states=self._ends, reasons=[Reason.WORKER_LOST]
            )
            rows = [row for item in items for row in self._rows(item, now)]
            if rows:
                # A former leader may have got here first (its last pass raced a failover).
                done = self.store.monitor.known_sources({row["source_event"] for row in rows})
                rows = [row for row in rows if row["source_event"] not in done]
            if rows or now >= self._cursor_due:
                # Events that make nothing move the stored cursor only now and then: a
                # new leader reading them again makes nothing of them either.
                self.store.monitor.add_notifications(rows, (CURSOR, upto), now)
                self._cursor_due = now + CURSOR_EVERY
                self._stored = upto
            self.position = upto
            made += len(rows)

    def _catch_up_cursor(self, now: datetime) -> None:
        """Once idle, store a lagging cursor anyway: retention keeps every event after the
        stored cursor, so a cursor left behind by the last burst would pin them for ever."""
        position = self.position
        if position is not None and position != self._stored and now >= self._cursor_due:
            self.store.monitor.add_notifications([], (CURSOR, position), now)
            self._cursor_due = now + CURSOR_EVERY
            self._stored = position

    def before_removal(self, job_id: int, now: datetime) -> int:
        """Make the messages of a job's events that no pass has read yet, as a pass would:
        the job is about to be removed, and its events with it (a pass comes twice a
        second, on the leader). How many were made; none twice, should a pass make them
        meanwhile."""
        after = self.store.monitor.cursor(CURSOR)
        if after is None:  # no notifier has read the log yet (none runs, or not yet)
            return 0
        items = self.store.monitor.job_events_after(
            job_id, after, KINDS, states=self._ends, reasons=[Reason.WORKER_LOST]
        )
        rows = [row for item in items for row in self._rows(item, now)]
        return self.store.monitor.add_untold_notifications(rows) if rows else 0

    def _start_position(self, now: datetime) -> int:
        stored = self.store.monitor.cursor(CURSOR)
        if stored is not None:
            self._stored = stored
            return stored
        first = self.store.monitor.first_event_since(now - FIRST_LOOK_BACK)
        return self.store.events.last_event_id() if first is None else first - 1

    def _safe_upto(self) -> int:
        """The highest id up to which every id has been seen (or waited for long enough)."""
        assert self.position is not None
        self._gaps.before_read()
        return self._gaps.contiguous(
            self.position, self.store.monitor.event_ids(self.position, BATCH)
        )

    # -- one event → its rows -------------------------------------------------
    def _rows(self, item: FeedEvent, now: datetime) -> list[dict[str, Any]]:
        names = notification_names(item)
        if not names:
            return []
        workflow = self._workflow_name(item)
        deliveries: dict[str, list[str]] = {}
        for name in names:
            for delivery in self.config.route(name, item.type, workflow):
                to = deliveries.setdefault(delivery.channel, [])
                to += [address for address in delivery.to if address not in to]
        if not deliveries and names[0] not in RECORD_ALWAYS:
            return []
        notice = self._notice(item, names[0], workflow)
        if notice is None:
            return []
        base = {
            "event": names[0],
            "job_id": item.event.job_id,
            "run_id": _run_id(item),
            "data": dict(notice),
            "source_event": item.event.id,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        if not deliveries:
            # Every row has the same keys: a pass stores its rows in one statement.
            recorded = {"status": RECORDED, "channel": None, "recipients": None}
            return [{**base, **recorded, "next_attempt_at": None}]
        log.info(
            "notification queued",
            extra={"event": names[0], "job": item.event.job_id, "channels": sorted(deliveries)},
        )
        return [
            {
                **base,
                "status": PENDING,
                "channel": channel,
                "recipients": to,
                "next_attempt_at": now,
            }
            for channel, to in deliveries.items()
        ]

    def _notice(self, item: FeedEvent, name: str, workflow: str | None) -> Notice | None:
        record = item.event.record
        notice: Notice = {"event": name, "at": record.at.isoformat()}
        if isinstance(record, WorkflowRunFinished):
            run = self.store.runs.get_run(record.run_id)
            runtime = None
            if run is not None and run.finished_at is not None:
                runtime = (run.finished_at - run.created_at).total_seconds()
            notice["run"] = {
                "id": record.run_id,
                "workflow": record.workflow,
                "state": record.state.value,
                "failed_nodes": list(record.failed_nodes or ()),
                "runtime": runtime,
            }
            notice["link"] = self.config.run_link(record.run_id)
            return notice
        job = self.store.jobs.get_job(item.event.job_id)
        if job is None:  # removed meanwhile: nothing left to tell about
            return None
        notice["job"] = _job_info(job, workflow, record.at)
        notice["log_tail"] = self.store.monitor.log_tail(job.id, LOG_TAIL)
        notice["link"] = self.config.job_link(job.id)
        if isinstance(record, SlaBreached):
            notice["sla"] = {
                "budget": record.budget,
                "limit": float(record.limit),
                "value": float(record.value),
                "metric": record.metric,
                "action": record.action,
            }
        return notice

    def _workflow_name(self, item: FeedEvent) -> str | None:
        if isinstance(
            item.event.record, WorkflowRunStarted | WorkflowRunFinished | WorkflowRunReopened
        ):
            return item.event.record.workflow
        return None if item.workflow_run is None else self._workflow_of(item.workflow_run)

    def _run_workflow(self, run_id: int) -> str | None:
        """The workflow of a run (which never changes: remembered, for the busy ones)."""
        if run_id in self._workflows:
            return self._workflows[run_id]
        run = self.store.runs.get_run(run_id)
        workflow = None if run is None else run.workflow
        if len(self._workflows) >= WORKFLOWS_KEPT:
            self._workflows.clear()
        self._workflows[run_id] = workflow
        return workflow


def _run_id(item: FeedEvent) -> int | None:
    if isinstance(
        item.event.record, WorkflowRunStarted | WorkflowRunFinished | WorkflowRunReopened
    ):
        return item.event.record.run_id
    return item.workflow_run


def _job_info(job: Job, workflow: str | None, at: datetime) -> JobInfo:
    return {
        "id": job.id,
        "type": job.type,
        "state": job.state.value,
        "name": job.name,
        "exit_code": job.exit_code,
        "runtime": job.runtime_at(at),
        "error": job.error,
        "reason": job.reason,
        "workflow": workflow,
        "node": job.node,
        "queue": job.queue,
    }
