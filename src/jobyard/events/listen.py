"""PostgreSQL LISTEN: hand each notification's payload on, reconnecting as needed.

``notified`` gets the payload of every notification, and ``None`` after each
(re)connection: what was written while nobody listened may concern anyone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from psycopg.conninfo import make_conninfo

from jobyard.store import Store
from jobyard.store.engine import network_options

log = logging.getLogger(__name__)


def conninfo(store: Store) -> str:
    """The store's database as a libpq URL (the SQLAlchemy driver name removed)."""
    url = store.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def listen(
    store: Store, channel: str, notified: Callable[[str | None], None], stop: threading.Event
) -> None:
    """Run until ``stop`` is set; a lost connection is retried with a growing delay."""
    delay = 0.5
    while not stop.is_set():
        try:
            # Keepalives: this connection only waits, so only they notice a dead link.
            options = network_options(store.engine.url) | {"connect_timeout": 5}
            info = make_conninfo(conninfo(store), **options)
            with psycopg.connect(info, autocommit=True) as conn:
                conn.execute(f"LISTEN {channel}")
                delay = 0.5
                notified(None)  # anything written while we were not listening
                while not stop.is_set():
                    for notify in conn.notifies(timeout=1.0):
                        notified(notify.payload)
        except psycopg.Error as exc:
            log.warning("listen connection lost; reconnecting", extra={"error": str(exc)})
            stop.wait(delay)
            delay = min(delay * 2, 10.0)
