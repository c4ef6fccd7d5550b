"""The ``after`` cursor of a job listing: where its next page starts.

A cursor holds the sort keys and the last listed job's values of them (see
:func:`jobyard.models.order_keys`), as URL-safe base64 of JSON. The next page is the
jobs sorted after those values, wherever the others went meanwhile: keyset paging skips
no job when earlier ones are removed and repeats none when new ones come.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from jobyard.errors import Invalid
from jobyard.models import Job, order_keys, order_values
from jobyard.storable import INT64_MAX

NUMBERS = frozenset({"id", "priority"})
TIMES = frozenset({"created_at", "updated_at", "started_at", "finished_at", "run_at"})


def cursor_after(job: Job, sort: Sequence[str]) -> str:
    """The cursor of the jobs listed after ``job``."""
    values = [_plain(value) for value in order_values(job, sort)]
    text = json.dumps([order_keys(sort), values], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def read_cursor(cursor: str, sort: Sequence[str]) -> list[Any]:
    """The values a cursor made for ``sort`` holds; 422 for any other text."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        keys, values = json.loads(text)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, RecursionError) as error:
        raise _bad("not a cursor of this listing") from error
    if keys != order_keys(sort) or not isinstance(values, list) or len(values) != len(keys):
        raise _bad("made for another sort: start again without it")
    return [_value(key.removeprefix("-"), value) for key, value in zip(keys, values, strict=True)]


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _value(name: str, value: Any) -> Any:
    if name in NUMBERS:
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > INT64_MAX:
            raise _bad(f"{name} is not an integer")
        return value
    if value is None and name in TIMES:
        return None
    if not isinstance(value, str) or "\x00" in value or not _encodes(value):
        raise _bad(f"{name} is not a string")
    if name not in TIMES:
        return value
    try:
        time = datetime.fromisoformat(value)
    except ValueError as error:
        raise _bad(f"{name} is not a time") from error
    if time.tzinfo is None:
        raise _bad(f"{name} has no offset")
    try:  # as the database gets it: within a day of year 1 or 9999, UTC is another year
        return time.astimezone(UTC)
    except OverflowError as error:
        raise _bad(f"{name} falls before year 1 or after 9999 in UTC") from error


def _encodes(value: str) -> bool:
    """Whether ``value`` is text a database takes (a lone surrogate is not)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _bad(message: str) -> Invalid:
    return Invalid(
        f"bad cursor: {message}", [{"field": "after", "location": "query", "message": message}]
    )
