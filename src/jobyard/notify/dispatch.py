"""The dispatcher: sends the outbox's due messages, retries with backoff, records the outcome.

Sending happens on a small thread pool, never on a worker's or a job's
thread: a slow or dead SMTP server delays its own messages and nothing else.
A message is taken with ``FOR UPDATE SKIP LOCKED`` and marked as taken for a
while, so two dispatchers never send it at the same time; if the process
dies while sending, the mark runs out and the message is sent again (delivery
is at least once). Every outcome (sent, a failed try that will be retried,
failed for good) is stored with the message and appears as a ``notification``
event on the job, and so on the global stream.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, cast

from jobyard import faults
from jobyard.clock import utcnow
from jobyard.events.records import NotificationAttempted
from jobyard.notify.channels import AmqpChannel, NotificationConfig
from jobyard.notify.message import Notice, render
from jobyard.notify.send import DeliveryError
from jobyard.store import Store
from jobyard.store.notes import FAILED, PENDING, SENT, Marks
from jobyard.text import shortened

log = logging.getLogger(__name__)
ERROR_MAX = 2000  # characters of a failed try's reason kept (a TEXT column)

SENDERS = 4  # messages in flight at once
CLAIM_MARGIN = 60.0  # seconds a taken message stays taken beyond its channel's timeout


class Dispatcher:
    def __init__(
        self,
        store: Store,
        config: NotificationConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self._clock = clock
        self._environ = os.environ if environ is None else environ
        self._pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="notify")
        self._in_flight = 0
        self._lock = threading.Lock()
        self.idle = threading.Event()
        self.idle.set()

    def run_once(self, now: datetime) -> int:
        """Start sending the due messages there is room for; returns how many."""
        with self._lock:
            room = SENDERS * 2 - self._in_flight
        if room <= 0 or not self.config.channels:
            return 0
        items = self.store.monitor.claim_due_notifications(now, self._marks(now), room)
        for item in items:
            with self._lock:
                self._in_flight += 1
                self.idle.clear()
            self._pool.submit(self._deliver, item)
        return len(items)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for channel in self.config.channels.values():
            if isinstance(channel, AmqpChannel):
                channel.close()

    def _deliver(self, item: dict[str, Any]) -> None:
        try:
            error = self._send(item)
            self._record(item, error)
        except Exception:  # a notification problem never escapes into the process
            log.exception("could not record a delivery", extra={"notification": item["id"]})
        finally:
            with self._lock:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self.idle.set()

    def _send(self, item: dict[str, Any]) -> str | None:
        """None when sent, else why not (secret-free)."""
        channel = self.config.channels.get(item["channel"])
        if channel is None:
            return f"channel {item['channel']!r} is not configured any more"
        notice = cast(Notice, item["data"])
        message = render(notice, delivery_id=str(item["id"]), to=item["recipients"] or ())
        faults.reach("outbox.send")
        try:
            channel.send(message, self._environ)
        except DeliveryError as exc:
            return exc.reason
        except Exception as exc:  # a bug or an odd library error: still a failed try
            return f"{type(exc).__name__}: {exc}"
        faults.reach("outbox.sent")
        return None

    def _record(self, item: dict[str, Any], error: str | None) -> None:
        if error is not None:  # a library's message may be long
            error = shortened(error, ERROR_MAX)
        now = self._clock()
        attempts = int(item["attempts"]) + 1
        values: dict[str, Any] = {"attempts": attempts, "claimed_until": None, "updated_at": now}
        policy = (
            self.config.retry_for(item["channel"])
            if item["channel"] in self.config.channels
            else None
        )
        if error is None:
            values |= {"status": SENT, "sent_at": now, "last_error": None, "next_attempt_at": None}
        elif policy is not None and attempts < policy.max_attempts:
            retry_at = now + timedelta(seconds=policy.delay(attempts))
            values |= {"status": PENDING, "last_error": error, "next_attempt_at": retry_at}
        else:
            values |= {"status": FAILED, "last_error": error, "next_attempt_at": None}
        event = NotificationAttempted(
            at=now,
            notification_id=item["id"],
            event=item["event"],
            channel=item["channel"],
            status=values["status"],
            attempts=attempts,
            error=error,
            next_attempt_at=values.get("next_attempt_at"),
        )
        self.store.monitor.record_delivery(item["id"], values, event)
        level = logging.INFO if error is None else logging.WARNING
        log.log(level, "notification %s", values["status"], extra=event.payload())

    def _marks(self, now: datetime) -> Marks:
        """Until when a message taken at ``now`` stays taken: its channel's own timeout and
        a margin (a slow channel's longer timeout would hold a fast one's messages, taken
        by a server that died, that much longer before another sends them); the margin
        alone for a channel this configuration does not have (it fails at once)."""
        after = now + timedelta(seconds=CLAIM_MARGIN)
        channels = self.config.channels.items()
        return {name: after + timedelta(seconds=float(c.timeout)) for name, c in channels}, after
