"""The plain values every client module shares: job states that end a job, API times."""

from __future__ import annotations

from datetime import datetime
from typing import Any

TERMINAL_STATES = frozenset({"succeeded", "failed", "killed", "upstream_failed"})
FAILED_STATES = frozenset({"failed", "killed", "upstream_failed"})


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp of the API as a datetime (``None`` stays ``None``)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else None
