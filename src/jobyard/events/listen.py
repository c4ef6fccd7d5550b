"""PostgreSQL LISTEN: call ``wake`` whenever a channel is notified, reconnecting as needed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from jobyard.store import Store

log = logging.getLogger(__name__)


def conninfo(store: Store) -> str:
    """The store's database as a libpq URL (the SQLAlchemy driver name removed)."""
    url = store.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def listen(store: Store, channel: str, wake: Callable[[], None], stop: threading.Event) -> None:
    """Run until ``stop`` is set; a lost connection is retried with a growing delay."""
    delay = 0.5
    while not stop.is_set():
        try:
            with psycopg.connect(conninfo(store), autocommit=True, connect_timeout=5) as conn:
                conn.execute(f"LISTEN {channel}")
                delay = 0.5
                wake()  # anything written while we were not listening
                while not stop.is_set():
                    for _ in conn.notifies(timeout=1.0):
                        wake()
        except psycopg.Error as exc:
            log.warning("listen connection lost; reconnecting", extra={"error": str(exc)})
            stop.wait(delay)
            delay = min(delay * 2, 10.0)
