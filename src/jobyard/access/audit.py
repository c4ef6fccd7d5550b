"""The audit log: who changed what, when, from where, and whether it was allowed."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypedDict, Unpack

from jobyard.access.records import AuditEntry, AuditQuery, Principal
from jobyard.store import Store

log = logging.getLogger(__name__)
# What no backend stores as text (PostgreSQL refuses NUL; a lone surrogate is not
# UTF-8), and the other control characters, which would garble the log's table.
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class How(TypedDict, total=False):
    """How an entry's change went, beyond who did what to what."""

    outcome: str  # ok (the default) | denied | failed
    address: str  # the client's
    detail: dict[str, Any] | None
    #: How a name (not a principal) came: a ``password`` that failed (the default),
    #: or ``cli`` for a command run against the database by a local user.
    via: str


class Audit:
    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self._store = store.access
        self._now = clock

    def record(
        self, who: Principal | str | None, action: str, target: str, **how: Unpack[How]
    ) -> None:
        """Write one entry; ``who`` is the principal, or a name when none was proven."""
        self.store([self.entry(who, action, target, **how)])

    def store(self, entries: Sequence[AuditEntry]) -> None:
        """Write entries made by :meth:`entry`, and say so in the process's log."""
        self._store.record(entries)
        for entry in entries:
            self.logged(entry)

    def entry(
        self, who: Principal | str | None, action: str, target: str, **how: Unpack[How]
    ) -> AuditEntry:
        """The entry :meth:`record` writes, for a caller that stores it with its change."""
        if isinstance(who, Principal):
            actor, via = who.name, who.via
        else:
            actor, via = who or "-", how.get("via", "password")
        return AuditEntry(
            self._now(),
            escaped(actor),
            via,
            action,
            escaped(target),
            how.get("outcome", "ok"),
            how.get("address", ""),
            how.get("detail"),
        )

    def logged(self, entry: AuditEntry) -> None:
        """Say in the process's log that ``entry`` was stored."""
        log.info(
            "audit",
            extra={
                "actor": entry.actor,
                "action": entry.action,
                "target": entry.target,
                "outcome": entry.outcome,
            },
        )

    def find(self, query: AuditQuery) -> tuple[list[AuditEntry], int]:
        return self._store.find_audit(query)


def escaped(text: str) -> str:
    """``text`` with control characters and lone surrogates written as escapes (``\\x00``).

    A failed login records the name that was tried, whatever it was.
    """
    return _UNSTORABLE.sub(lambda found: ascii(found[0])[1:-1], text)
