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
from datetime import datetime, timedelta
from typing import Any

from jobyard.clock import utcnow
from jobyard.events.gaps import GapWait
from jobyard.models import EventKind, FeedEvent, Job
from jobyard.notify.channels import NotificationConfig
from jobyard.notify.message import LOG_TAIL, JobInfo, Notice
from jobyard.outcomes import Reason
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.notes import PENDING, RECORDED

log = logging.getLogger(__name__)

CURSOR = "notifier"
KINDS = (EventKind.STATE.value, EventKind.SLA.value, EventKind.WORKFLOW.value)
BATCH = 2000
GAP_GRACE = 5.0  # seconds to wait for a missing event id before stepping over it
FIRST_LOOK_BACK = timedelta(minutes=5)  # a new database: events this recent are still told
RECORD_ALWAYS = frozenset(
    {"failed", "worker_lost", "sla_breach", "upstream_failed", "workflow_failed"}
)


def notification_names(item: FeedEvent) -> list[str]:
    """The notifications an event makes, most specific first (pure)."""
    event = item.event
    data = event.data
    if event.kind is EventKind.SLA:
        return ["sla_breach"]
    if event.kind is EventKind.WORKFLOW:
        if data.get("event") != "workflow_finished":
            return []
        return {"failed": ["workflow_failed"], "succeeded": ["workflow_succeeded"]}.get(
            str(data.get("state")), []
        )
    if event.kind is not EventKind.STATE:
        return []
    state, lost = data.get("state"), data.get("reason") == Reason.WORKER_LOST
    if state == JobState.FAILED.value:
        return ["worker_lost", "failed"] if lost else ["failed"]
    if state == JobState.SUCCEEDED.value:
        return ["succeeded"]
    if state == JobState.UPSTREAM_FAILED.value:
        return ["upstream_failed"]
    return ["worker_lost"] if lost else []


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
        self._gaps = GapWait(gap_grace)

    def run_once(self, now: datetime) -> int:
        """Turn the new events into messages; returns how many rows were made."""
        if self.position is None:
            self.position = self._start_position(now)
        made = 0
        while True:
            upto = self._safe_upto()
            if upto <= self.position:
                return made
            items = self.store.monitor.events_between(self.position, upto, KINDS)
            rows = [row for item in items for row in self._rows(item, now)]
            # A former leader may have got here first (its last pass raced a failover).
            done = self.store.monitor.known_sources({row["source_event"] for row in rows})
            rows = [row for row in rows if row["source_event"] not in done]
            self.store.monitor.add_notifications(rows, (CURSOR, upto), now)
            self.position = upto
            made += len(rows)

    def _start_position(self, now: datetime) -> int:
        stored = self.store.monitor.cursor(CURSOR)
        if stored is not None:
            return stored
        first = self.store.monitor.first_event_since(now - FIRST_LOOK_BACK)
        return self.store.events.last_event_id() if first is None else first - 1

    def _safe_upto(self) -> int:
        """The highest id up to which every id has been seen (or waited for long enough)."""
        assert self.position is not None
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
            return [{**base, "status": RECORDED, "channel": None, "recipients": None}]
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
        notice: Notice = {"event": name, "at": item.event.at.isoformat()}
        if item.event.kind is EventKind.WORKFLOW:
            data = item.event.data
            run_id = int(data["run_id"])
            run = self.store.runs.get_run(run_id)
            runtime = None
            if run is not None and run.finished_at is not None:
                runtime = (run.finished_at - run.created_at).total_seconds()
            notice["run"] = {
                "id": run_id,
                "workflow": str(data.get("workflow")),
                "state": str(data.get("state")),
                "failed_nodes": list(data.get("failed_nodes") or []),
                "runtime": runtime,
            }
            notice["link"] = self.config.run_link(run_id)
            return notice
        job = self.store.jobs.get_job(item.event.job_id)
        if job is None:  # removed meanwhile: nothing left to tell about
            return None
        notice["job"] = _job_info(job, workflow, item.event.at)
        notice["log_tail"] = self.store.monitor.log_tail(job.id, LOG_TAIL)
        notice["link"] = self.config.job_link(job.id)
        if item.event.kind is EventKind.SLA:
            data = item.event.data
            notice["sla"] = {
                "budget": str(data["budget"]),
                "limit": float(data["limit"]),
                "value": float(data["value"]),
                "metric": data.get("metric"),
                "action": data.get("action"),
            }
        return notice

    def _workflow_name(self, item: FeedEvent) -> str | None:
        if item.event.kind is EventKind.WORKFLOW:
            return str(item.event.data.get("workflow"))
        return None if item.workflow_run is None else self._workflow_of(item.workflow_run)

    def _run_workflow(self, run_id: int) -> str | None:
        run = self.store.runs.get_run(run_id)
        return None if run is None else run.workflow


def _run_id(item: FeedEvent) -> int | None:
    if item.event.kind is EventKind.WORKFLOW:
        return int(item.event.data["run_id"])
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
