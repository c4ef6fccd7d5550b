"""The Python client of a jobyard server: ``from jobyard.client import Client``.

Owns the synchronous client (:mod:`.sync`) and the asynchronous one
(:mod:`.asynchronous`, ``AsyncClient``), which run the same operations
(:mod:`.calls`) through a sync or an async driver (:mod:`.flow`); their typed
results (:mod:`.models`) and stream events (:mod:`.events`), errors
(:mod:`.errors`), credentials and the token that ``jobyard login`` saves
(:mod:`.auth`), and event streams that reconnect and deliver each event once
(:mod:`.stream`, :mod:`.sse`), or are made up by polling where the server
cannot stream. Talks to the server over HTTP only: it imports nothing of the
server (only httpx, anyio and the standard library).
"""

from __future__ import annotations

from jobyard.client.asynchronous import AsyncClient
from jobyard.client.events import (
    AnyEvent,
    CloseEvent,
    LogEvent,
    MetricEvent,
    NotificationEvent,
    ProgressEvent,
    ResetEvent,
    SlaEvent,
    StateEvent,
    WorkflowEvent,
    parse_event,
)
from jobyard.client.nodes import RunNodes
from jobyard.client.sync import (
    DEFAULT_SERVER,
    ActionResult,
    ApiError,
    AuditEntry,
    AuditPage,
    Client,
    Conflict,
    CreatedToken,
    Dependency,
    Event,
    Forbidden,
    Invalid,
    JobInfo,
    JobPage,
    JobTypeInfo,
    LogLine,
    LogPage,
    Me,
    NotFound,
    Notification,
    NotificationPage,
    QueueInfo,
    Sample,
    ScheduleInfo,
    ServerUnreachable,
    StreamReset,
    StreamUnavailable,
    TokenInfo,
    Unauthorized,
    UserInfo,
    WorkerStatus,
)

__all__ = [
    "DEFAULT_SERVER",
    "ActionResult",
    "AnyEvent",
    "ApiError",
    "AsyncClient",
    "AuditEntry",
    "AuditPage",
    "Client",
    "CloseEvent",
    "Conflict",
    "CreatedToken",
    "Dependency",
    "Event",
    "Forbidden",
    "Invalid",
    "JobInfo",
    "JobPage",
    "JobTypeInfo",
    "LogEvent",
    "LogLine",
    "LogPage",
    "Me",
    "MetricEvent",
    "NotFound",
    "Notification",
    "NotificationEvent",
    "NotificationPage",
    "ProgressEvent",
    "QueueInfo",
    "ResetEvent",
    "RunNodes",
    "Sample",
    "ScheduleInfo",
    "ServerUnreachable",
    "SlaEvent",
    "StateEvent",
    "StreamReset",
    "StreamUnavailable",
    "TokenInfo",
    "Unauthorized",
    "UserInfo",
    "WorkerStatus",
    "WorkflowEvent",
    "parse_event",
]
