"""The outbox loop: on the scheduler leader, make messages from events and send them.

One thread per server process runs :class:`~jobyard.notify.notifier.Notifier` and
:class:`~jobyard.notify.dispatch.Dispatcher` every ``interval`` while this process
leads, so exactly one process reads the event log for notifications.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from jobyard.clock import utcnow
from jobyard.notify.channels import NotificationConfig
from jobyard.notify.dispatch import Dispatcher
from jobyard.notify.notifier import Notifier
from jobyard.store import Store

log = logging.getLogger(__name__)


class Outbox:
    def __init__(
        self,
        store: Store,
        config: NotificationConfig,
        *,
        leading: Callable[[], bool],
        interval: float = 0.5,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.notifier = Notifier(store, config, clock=clock)
        self.dispatcher = Dispatcher(store, config, clock=clock)
        self._leading = leading
        self._interval = interval
        self._clock = clock
        self._stop = threading.Event()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime) -> None:
        if not self._leading():
            self.notifier.position = None  # another process leads: re-read our place later
            return
        self.notifier.run_once(now)
        self.dispatcher.run_once(now)

    def wake(self) -> None:
        self._wakeup.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.dispatcher.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wakeup.clear()
            try:
                self.run_once(self._clock())
            except Exception:  # the database may be restarting; the next pass catches up
                log.warning("outbox pass failed", exc_info=True)
            self._wakeup.wait(self._interval)
