"""An open event stream checks again, now and then, that its caller may still read it.

A request's credentials are checked once, when it arrives
(:func:`jobyard.api.auth.principal`); an event stream may then stay open for
days. So a stream checks the same credentials again, the same way, once every
``stream_recheck`` seconds (:data:`jobyard.settings.STREAM_RECHECK` by default):
one read of a token, session or user row per stream and interval, whatever the
events. Once they no longer allow the stream — a revoked or expired token, a
removed user or a changed password, a logout, a role lowered below the route's
read role — the stream ends with a ``denied`` event (docs/api.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from anyio import to_thread
from starlette.requests import Request

from jobyard.access import Principal, Role
from jobyard.api.auth import refusal
from jobyard.errors import JobyardError
from jobyard.store.outage import unavailable


class Recheck:
    """When a stream's credentials are due to be checked again, and the check.

    ``check`` is the credential check its request passed (None: a route without
    one, never refused); ``role`` what the stream needs.
    """

    def __init__(
        self, check: Callable[[], Principal] | None, role: Role | None, interval: float
    ) -> None:
        self._check = check
        self._role = role
        self.interval = interval
        self._next = time.monotonic() + interval  # checked just now, by the request

    @classmethod
    def of(cls, request: Request, interval: float) -> Recheck:
        """The recheck of the stream answering ``request`` (as its guard left it)."""
        state = request.state
        return cls(getattr(state, "recheck", None), getattr(state, "read_role", None), interval)

    def until_due(self) -> float:
        """Seconds until the next check (the longest a stream may wait for an event)."""
        return max(self._next - time.monotonic(), 0.0)

    def due(self) -> bool:
        return time.monotonic() >= self._next

    async def refusal(self) -> JobyardError | None:
        """Why the caller may no longer read the stream (checked now), or None."""
        self._next = time.monotonic() + self.interval
        if self._check is None:
            return None
        try:
            who = await to_thread.run_sync(self._check)
        except JobyardError as exc:  # 401: revoked, expired, removed, changed, logged out
            return exc
        except Exception as exc:
            if unavailable(exc):  # the database is away: the stream goes on, checked later
                return None
            raise
        return None if self._role is None else refusal(who, self._role)
