"""The database out of reach for a while: how to tell, and how to wait it out.

A server that is down or restarting, a dropped connection, a deadlock victim on
MariaDB: the same write is worth trying again later. Any other error (a value
the database refuses, a bug) would fail again the same way, so retrying it
would only hide it: it is raised at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

T = TypeVar("T")

FIRST_DELAY, MAX_DELAY = 0.1, 5.0  # seconds between tries: doubling, up to the max
REPEAT_EVERY = 10.0  # seconds between two warnings of the same outage


# MariaDB's server errors that pass: too many connections (1040, 1203 for one user),
# access refused (a user being made again), a shutdown, network errors (1158-1161), a
# lock wait's timeout, a deadlock, a query or connection killed, a server read-only for
# a failover (1290, 1836), a connection closed for being idle. PyMySQL raises every
# server error number it does not know (a CHECK refusing a value: 4025) as an
# OperationalError, so the class cannot tell; its client's own errors (2000-2999:
# cannot connect, server gone, lost) are all of a connection, and so is its 0 (a socket
# it had closed already).
_MARIADB_PASSING = frozenset(
    {0, 1040, 1044, 1045, 1053, 1158, 1159, 1160, 1161, 1203, 1205, 1213, 1290, 1317}
    | {1836, 1927, 4031}
)
_MARIADB_CLIENT = range(2000, 3000)


# SQLite raises OperationalError for a busy or unreadable file and for a statement it
# refuses alike (SQLITE_ERROR: more ORDER BY terms than it takes, say): its primary
# result codes tell. What passes: busy, locked, out of memory, read-only (a file's mode
# or a full disk's remount), interrupted, I/O error, disk full, cannot open, protocol.
_SQLITE_PASSING = frozenset({5, 6, 7, 8, 9, 10, 13, 14, 15})


def unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database could not be reached (try again later)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        code = getattr(exc.orig, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in _SQLITE_PASSING
        errno = _mariadb_errno(exc)
        return errno is None or errno in _MARIADB_CLIENT or errno in _MARIADB_PASSING
    return False


def _mariadb_errno(exc: DBAPIError) -> int | None:
    """The server's or client's error number of a PyMySQL error, else None."""
    orig = exc.orig
    if not type(orig).__module__.startswith("pymysql"):
        return None
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


# A transaction the database rolled back to break a deadlock: PostgreSQL's SQLSTATE,
# MariaDB's error number. Nothing of it was kept: the whole of it may be tried again.
_DEADLOCK_STATE, _DEADLOCK_ERRNO = "40P01", 1213


def deadlocked(exc: BaseException) -> bool:
    """True when ``exc`` is a deadlock's victim (its transaction was rolled back)."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == _DEADLOCK_STATE:
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] == _DEADLOCK_ERRNO


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


class OutageLog:
    """Tells of an outage in a log without a line per failed try: the first failure
    (``message``, with its traceback if asked), then at most one line every ``every``
    seconds counting the tries failed since, and ``recovered`` when a try works again.

    A run retries its writes several times a second, a worker's loop twice a second:
    a minute's outage was hundreds of identical lines per job.
    """

    def __init__(
        self,
        logger: logging.Logger,
        message: str,
        recovered: str,
        extra: dict[str, Any],
        *,
        every: float = REPEAT_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self._message, self._recovered = logger, message, recovered
        self._extra = extra
        self._every, self._clock = every, clock
        self.failures = 0  # tries failed in a row
        self._told = 0  # of them, those a line has told of
        self._next = 0.0  # monotonic time from which the next line may be written

    def failed(self, exc: BaseException, *, trace: bool = False) -> None:
        self.failures += 1
        now = self._clock()
        if self.failures > 1 and now < self._next:
            return
        self._next = now + self._every
        extra = self._extra | {"error": first_line(exc), "failed_tries": self.failures}
        if self.failures == 1:
            self._log.warning(self._message, extra=extra, exc_info=exc if trace else None)
        else:
            since = self.failures - self._told
            self._log.warning(
                "%s (still: %d more tries failed): %s",
                self._message,
                since,
                first_line(exc),
                extra=extra,
            )
        self._told = self.failures

    def worked(self) -> None:
        """A try worked: say so if some had failed, and start counting anew."""
        if self.failures:
            extra = self._extra | {"failed_tries": self.failures}
            self._log.info(self._recovered, extra=extra)
        self.failures = self._told = 0
        self._next = 0.0


class Ping:
    """Asks whether the database answers, one question at a time: whoever asks while a
    ping is under way waits for that one. A database that hangs holds one thread and
    one connection, however often a load balancer asks."""

    def __init__(self, ping: Callable[[], None]) -> None:
        self._ping = ping
        self._lock = threading.Lock()
        self._under_way: Future[None] | None = None

    def answers(self, within: float) -> None:
        """Return once the database answered; raise what the ping raised, or
        :class:`TimeoutError` when no answer came ``within`` seconds."""
        with self._lock:
            if self._under_way is None or self._under_way.done():
                self._under_way = in_background(self._ping, "db-ping")
            under_way = self._under_way
        under_way.result(within)  # concurrent.futures' TimeoutError is the builtin one


def in_background(call: Callable[[], T], name: str) -> Future[T]:
    """``call()`` on a daemon thread of its own, its outcome in the future: who waits
    for it may give up, and one that hangs on the database holds up nobody, nor the
    process's exit."""
    outcome: Future[T] = Future()

    def run() -> None:
        try:
            result = call()
        except BaseException as exc:  # the waiter raises it
            outcome.set_exception(exc)
        else:
            outcome.set_result(result)

    threading.Thread(target=run, name=name, daemon=True).start()
    return outcome
