"""The Python client of a jobyard server: ``from jobyard.client import Client``.

Owns the synchronous client (:mod:`.sync`), its typed results
(:mod:`.models`), errors (:mod:`.errors`), its credentials and the token that
``jobyard login`` saves (:mod:`.auth`), and event streams that reconnect and
deliver each event once, over SSE (:mod:`.stream`, :mod:`.sse`) or by polling
(:mod:`.poll`). Talks to the server over HTTP only: it imports nothing
of the server (only httpx and the standard library).
"""

from __future__ import annotations

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
    "ApiError",
    "AuditEntry",
    "AuditPage",
    "Client",
    "Conflict",
    "CreatedToken",
    "Dependency",
    "Event",
    "Forbidden",
    "Invalid",
    "JobInfo",
    "JobPage",
    "JobTypeInfo",
    "LogLine",
    "LogPage",
    "Me",
    "NotFound",
    "Notification",
    "NotificationPage",
    "QueueInfo",
    "Sample",
    "ScheduleInfo",
    "ServerUnreachable",
    "StreamReset",
    "StreamUnavailable",
    "TokenInfo",
    "Unauthorized",
    "UserInfo",
    "WorkerStatus",
]
