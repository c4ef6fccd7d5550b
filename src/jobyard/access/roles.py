"""The three roles, each allowed everything the one below it is."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"  # reads everything
    OPERATOR = "operator"  # also submits and controls jobs, runs, schedules and queues
    ADMIN = "admin"  # also job types, workflows, users, tokens, workers and channels

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may."""
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def with_article(noun: str) -> str:
    """``noun`` after its indefinite article: "a viewer", "an operator", "an admin"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
