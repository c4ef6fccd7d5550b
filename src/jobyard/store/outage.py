"""The database out of reach for a while: how to tell, and how to wait it out.

A server that is down or restarting, a dropped connection, a deadlock victim on
MariaDB: the same write is worth trying again later. Any other error (a value
the database refuses, a bug) would fail again the same way, so retrying it
would only hide it: it is raised at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

T = TypeVar("T")

FIRST_DELAY, MAX_DELAY = 0.1, 5.0  # seconds between tries: doubling, up to the max


def unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database could not be reached (try again later)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def first_line(exc: BaseException) -> str:
    """An error's message without what SQLAlchemy adds below it (the SQL, the parameters)."""
    return str(exc).partition("\n")[0]


def retry_while_unavailable(
    write: Callable[[], T],
    on_retry: Callable[[BaseException], None],
    *,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """``write()``, tried again with a growing delay for as long as the database is out
    of reach; ``on_retry`` hears of each failed try. Any other error is raised."""
    delay = FIRST_DELAY
    while True:
        try:
            return write()
        except Exception as exc:
            if not unavailable(exc):
                raise
            on_retry(exc)
        sleep(delay)
        delay = min(delay * 2, MAX_DELAY)
