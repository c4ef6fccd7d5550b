"""PostgreSQL LISTEN: hand each notification's payload on, reconnecting as needed.

``notified`` gets the payload of every notification, and ``None`` after each
(re)connection: what was written while nobody listened may concern anyone.

A listener may listen only while it is :class:`Wanted`, under a lease in
``feed_listeners`` (see migration 0014): the live feed listens while it has
subscribers, and event inserts notify only while a lease is current, since
every notification costs each listening backend of the database a transaction.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Protocol

import psycopg
from psycopg.conninfo import make_conninfo

from jobyard.store import Store
from jobyard.store.engine import network_options

log = logging.getLogger(__name__)

LEASE_SECONDS = 60  # a lease not renewed for this long (its process died) stops mattering
RENEW_SECONDS = 20
_TAKE = (
    "INSERT INTO feed_listeners (token, until) "
    "VALUES (%(token)s, now() AT TIME ZONE 'UTC' + make_interval(secs => %(seconds)s)) "
    "ON CONFLICT (token) DO UPDATE SET until = EXCLUDED.until"
)
_EXPIRED = "DELETE FROM feed_listeners WHERE until < now() AT TIME ZONE 'UTC'"
_DROP = "DELETE FROM feed_listeners WHERE token = %(token)s"


class Wanted(Protocol):
    """When to listen: ``wait`` blocks until wanted (or a moment passed), ``still`` is
    asked about once a second while listening."""

    def wait(self, timeout: float) -> bool: ...

    def still(self) -> bool: ...


def conninfo(store: Store) -> str:
    """The store's database as a libpq URL (the SQLAlchemy driver name removed)."""
    url = store.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def listen(
    store: Store,
    channel: str,
    notified: Callable[[str | None], None],
    stop: threading.Event,
    *,
    wanted: Wanted | None = None,
) -> None:
    """Run until ``stop`` is set; a lost connection is retried with a growing delay.

    With ``wanted``, connect only while it is, holding a lease in ``feed_listeners``.
    """
    delay = 0.5
    while not stop.is_set():
        if wanted is not None and (not wanted.wait(1.0) or stop.is_set()):
            continue  # not wanted yet, or woken by the stop
        try:
            # Keepalives: this connection only waits, so only they notice a dead link.
            options = network_options(store.engine.url) | {"connect_timeout": 5}
            info = make_conninfo(conninfo(store), **options)
            with psycopg.connect(info, autocommit=True) as conn:
                if wanted is None:
                    _listen(conn, channel, notified, stop.is_set)
                else:
                    _listen_leased(conn, channel, notified, stop, wanted)
                delay = 0.5
        except psycopg.Error as exc:
            log.warning("listen connection lost; reconnecting", extra={"error": str(exc)})
            stop.wait(delay)
            delay = min(delay * 2, 10.0)


def _listen(
    conn: psycopg.Connection[tuple[object, ...]],
    channel: str,
    notified: Callable[[str | None], None],
    done: Callable[[], bool],
) -> None:
    conn.execute(f"LISTEN {channel}")
    notified(None)  # anything written while we were not listening
    while not done():
        for notify in conn.notifies(timeout=1.0):
            notified(notify.payload)


def _listen_leased(
    conn: psycopg.Connection[tuple[object, ...]],
    channel: str,
    notified: Callable[[str | None], None],
    stop: threading.Event,
    wanted: Wanted,
) -> None:
    """Listen under a lease, renewed while wanted and dropped at the end.

    The lease is taken before LISTEN and the catch-up read comes after it, but an
    event inserted before the lease committed and committed after the catch-up
    read sends no NOTIFY: the hub's safety poll (once a second) delivers it.
    """
    lease = {"token": secrets.token_hex(16), "seconds": LEASE_SECONDS}
    conn.execute(_EXPIRED)
    conn.execute(_TAKE, lease)
    renew_at = time.monotonic() + RENEW_SECONDS

    def done() -> bool:
        nonlocal renew_at
        if stop.is_set() or not wanted.still():
            return True
        if time.monotonic() >= renew_at:
            conn.execute(_TAKE, lease)
            renew_at = time.monotonic() + RENEW_SECONDS
        return False

    _listen(conn, channel, notified, done)
    conn.execute(_DROP, lease)
