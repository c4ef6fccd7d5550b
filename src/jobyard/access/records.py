"""Frozen records of access: users, tokens, who made a request, and audit entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobyard.access.roles import Role


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Token:
    """An API token; its secret is shown once, at creation, and stored hashed."""

    id: int
    user_id: int
    user: str
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    made_by: int | None = None  # the token it was made with: revoked with that one

    def valid(self, now: datetime) -> bool:
        return still_valid(self.expires_at, self.revoked_at, now)


def still_valid(expires_at: datetime | None, revoked_at: datetime | None, now: datetime) -> bool:
    """Whether a token with these ends works at ``now``: not revoked, not expired."""
    return revoked_at is None and (expires_at is None or expires_at > now)


@dataclass(frozen=True)
class Principal:
    """Who makes a request, and how they proved it.

    ``via`` is ``password`` (HTTP Basic), ``token`` (bearer), ``session`` (the
    browser's cookie) or ``cli`` (a command run against the database). A token's
    role may be lower than its owner's: ``role`` is what this request may do.
    """

    user_id: int
    name: str
    role: Role
    via: str
    token_id: int | None = None
    csrf: str | None = None  # the session's CSRF token


OUTCOMES = ("ok", "denied", "failed")  # of an audited request


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    via: str
    action: str
    target: str
    outcome: str = "ok"  # one of OUTCOMES
    address: str = ""
    detail: dict[str, Any] | None = None
    id: int | None = None


@dataclass(frozen=True)
class AuditQuery:
    page: int = 1
    per_page: int = 50
    actors: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None  # in the target
