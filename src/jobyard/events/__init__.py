"""Events: one vocabulary of what happened, and the live hub that fans the event log out.

Owns the typed event records (:mod:`.records`: past-tense, frozen, each with
its stored kind, its stream name and its payload), the hub that one API
process keeps over the ``job_events`` table (:mod:`.hub`), waiting for ids
that commit late (:mod:`.gaps`), and the PostgreSQL LISTEN connection that
wakes readers (:mod:`.listen`). The records are pure data that the store may
import; the hub may import the domain modules and the store, never the API,
which only renders these events as Server-Sent Events.
"""

from jobyard.events.records import (
    RECORDS,
    FeedEvent,
    JobClaimed,
    JobCreated,
    JobEvent,
    JobHandedBack,
    JobPromoted,
    JobRescheduled,
    JobStateChanged,
    JobStateRecord,
    JobTerminated,
    LogWritten,
    MetricReported,
    NotificationAttempted,
    ProgressReported,
    Record,
    SlaBreached,
    WorkflowRunFinished,
    WorkflowRunReopened,
    WorkflowRunStarted,
    unmarshal,
)

__all__ = [
    "RECORDS",
    "FeedEvent",
    "JobClaimed",
    "JobCreated",
    "JobEvent",
    "JobHandedBack",
    "JobPromoted",
    "JobRescheduled",
    "JobStateChanged",
    "JobStateRecord",
    "JobTerminated",
    "LogWritten",
    "MetricReported",
    "NotificationAttempted",
    "ProgressReported",
    "Record",
    "SlaBreached",
    "WorkflowRunFinished",
    "WorkflowRunReopened",
    "WorkflowRunStarted",
    "unmarshal",
]
