"""Every change made through the API goes into the audit log, before its answer leaves.

An ASGI middleware: when a request that may change something (not GET, HEAD
or OPTIONS) is answered, its entry is written before the first byte of the
answer is sent, so a client that saw success can find its entry. Changes are
written with ``ok``; refusals for want of a role (403) with ``denied``. The
action is the route's name (``submit``, ``kill_job``, ``create_token``…), the
target the path, or the new resource's ``Location`` for a creation; a route
may add details with :func:`note_for_audit`. A route that stores its change
through the store's ``audit`` hook (a submission) writes its entry in the same
transaction instead (:func:`in_transaction`): no change is kept without its entry,
and the middleware writes nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from anyio import to_thread
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobyard.access import Principal
from jobyard.access.audit import Audit
from jobyard.access.records import AuditEntry
from jobyard.models import Job
from jobyard.store.protocol import AuditOf

log = logging.getLogger(__name__)
READS = frozenset({"GET", "HEAD", "OPTIONS"})
UNAUDITED = frozenset({"login", "logout"})  # recorded by the gate and the session routes


NOTE = "audit_note"
WRITTEN = "audit_written"  # the entries a route stored with its change


def in_transaction(
    request: Request, audit: Audit, outcome: Callable[[Sequence[tuple[Job, bool]]], tuple[int, str]]
) -> AuditOf:
    """The store's ``audit`` hook for this request: its entry, made as the middleware would.

    ``outcome`` says, from what was stored, the answer's status and the entry's
    target (the new job's path, or the request's).
    """

    def entries(added: Sequence[tuple[Job, bool]]) -> list[AuditEntry]:
        scope = request.scope
        who = scope.get("state", {}).get("principal")
        name = getattr(scope.get("route"), "name", None)
        if not isinstance(who, Principal) or name is None:
            return []
        status, target = outcome(added)
        made = [_entry(audit, scope, who, name, status, target)]
        setattr(request.state, WRITTEN, made)
        return made

    return entries


def note_for_audit(request: Request, **detail: Any) -> None:
    """Add to the audit entry of this request what its path does not say (e.g. which ids)."""
    setattr(request.state, NOTE, getattr(request.state, NOTE, {}) | detail)


class AuditTrail:
    def __init__(self, app: ASGIApp, audit: Audit) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return

        async def send_recorded(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._record(scope, message)
            await send(message)

        await self.app(scope, receive, send_recorded)

    async def _record(self, scope: Scope, start: Message) -> None:
        status: int = start["status"]
        route = scope.get("route")
        state = scope.get("state", {})
        who = state.get("principal")
        name = getattr(route, "name", None)
        if WRITTEN in state and status < 400:  # stored with the change, committed by now
            for entry in state[WRITTEN]:
                self.audit.logged(entry)
            return
        if not isinstance(who, Principal) or name is None or name in UNAUDITED:
            return
        if status >= 400 and status != 403:
            return  # refused for another reason: nothing changed, nobody was stopped
        headers = dict(start.get("headers", ()))
        location = headers.get(b"location", b"").decode("latin-1")
        # Decoded like the request's path, so a creation and a later change of the same
        # resource name it alike (``/api/v1/users/a@b``, not ``…/a%40b``).
        target = unquote(urlsplit(location).path) if location else scope["path"]
        entry = _entry(self.audit, scope, who, name, status, target)
        try:
            await to_thread.run_sync(lambda: self.audit.store([entry]))
        except Exception:  # the change is made; a lost entry must not turn it into a 500
            log.exception("cannot write the audit entry", extra={"action": name})


def _entry(
    audit: Audit, scope: Scope, who: Principal, name: str, status: int, target: str
) -> AuditEntry:
    client = scope.get("client")
    detail: dict[str, Any] = {"method": scope["method"], "status": status}
    if scope.get("query_string"):
        detail["query"] = scope["query_string"].decode("latin-1")[:500]
    detail |= scope.get("state", {}).get(NOTE, {})
    return audit.entry(
        who,
        name,
        target,
        outcome="denied" if status == 403 else "ok",
        address=client[0] if client else "",
        detail=detail,
    )
