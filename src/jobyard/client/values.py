"""The plain values every client module shares: job states that end a job, API times."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

TERMINAL_STATES = frozenset({"succeeded", "failed", "killed", "upstream_failed"})
FAILED_STATES = frozenset({"failed", "killed", "upstream_failed"})


def server_url(server: str) -> str:
    """``server`` as a URL: ``HOST:PORT`` without a scheme is ``http://HOST:PORT``."""
    return server if "://" in server else f"http://{server}"


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp of the API as a datetime (``None`` stays ``None``)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def local_time(moment: datetime, zone: tzinfo | None = None) -> datetime:
    """A naive ``moment`` as the wall clock of ``zone`` (None: this machine's local time)
    shows it, made aware; an aware one as it is.

    :class:`ValueError` for a time that clock skips (a spring-forward gap: it would be
    moved an hour), and for one that the zone's offset puts past year 1 or 9999.
    """
    if moment.tzinfo is not None:
        return moment
    where = "this machine's time zone" if zone is None else str(zone)
    try:
        aware = moment.astimezone() if zone is None else moment.replace(tzinfo=zone)
        shown = aware.astimezone(UTC).astimezone(zone)  # that clock at that moment
    except (OverflowError, ValueError):
        raise ValueError(f"{moment.isoformat()} is out of range in {where}") from None
    if shown.replace(tzinfo=None) != moment:
        raise ValueError(f"{moment.isoformat()} does not exist in {where} (clocks skip it)")
    return aware
