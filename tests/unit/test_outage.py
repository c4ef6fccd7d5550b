"""Writes wait out a database that is out of reach, and only that."""

from __future__ import annotations

import logging
import sqlite3
import tempfile
import threading
from collections.abc import Callable

import pymysql
import pytest
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)

from jobyard.store.outage import (
    MAX_DELAY,
    OutageLog,
    Ping,
    retry_while_unavailable,
    unavailable,
)

REFUSED = Exception("server said no")


def sqlite_error(make: Callable[[str], object]) -> OperationalError:
    """The error SQLAlchemy would wrap of what ``make`` (given a file's path) raises."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            make(f"{folder}/jobs.db")
        except sqlite3.OperationalError as exc:
            return OperationalError("SELECT", {}, exc)
    raise AssertionError("no error")


def busy(path: str) -> None:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    sqlite3.connect(path, timeout=0, isolation_level=None).execute("BEGIN IMMEDIATE")


def cannot_open(path: str) -> None:
    sqlite3.connect(f"{path}/no/such/folder")


def too_many_terms(path: str) -> None:
    sqlite3.connect(path).execute("SELECT 1 ORDER BY " + ", ".join(["1"] * 2001))


def failing(errors: list[Exception]) -> Callable[[], str]:
    """A write that raises each of ``errors`` in turn, then succeeds."""

    def write() -> str:
        if errors:
            raise errors.pop(0)
        return "stored"

    return write


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("INSERT", {}, ConnectionRefusedError("connection refused")),
        InterfaceError("INSERT", {}, Exception("connection already closed")),
        DBAPIError("INSERT", {}, Exception("server closed"), connection_invalidated=True),
        OperationalError("INSERT", {}, pymysql.err.OperationalError(2013, "Lost connection")),
        OperationalError("INSERT", {}, pymysql.err.OperationalError(1927, "Connection killed")),
        OperationalError("INSERT", {}, pymysql.err.OperationalError(1213, "Deadlock found")),
        InterfaceError("INSERT", {}, pymysql.err.InterfaceError(0, "")),  # a closed socket
        OperationalError("INSERT", {}, pymysql.err.OperationalError(1290, "--read-only")),
        sqlite_error(busy),
        sqlite_error(cannot_open),
    ],
)
def test_an_unreachable_database_is_waited_out(error: DBAPIError) -> None:
    assert unavailable(error)
    slept: list[float] = []
    retried: list[BaseException] = []
    write = failing([error] * 8)
    assert retry_while_unavailable(write, retried.append, sleep=slept.append) == "stored"
    assert retried == [error] * 8
    assert slept[:3] == [0.1, 0.2, 0.4]  # doubling
    assert max(slept) == MAX_DELAY


@pytest.mark.parametrize(
    "error",
    [
        DataError("INSERT", {}, REFUSED),
        IntegrityError("INSERT", {}, REFUSED),
        ProgrammingError("INSERT", {}, REFUSED),
        DBAPIError("INSERT", {}, REFUSED),
        # MariaDB's CHECK refusing a value: PyMySQL's class for numbers it does not know.
        OperationalError("INSERT", {}, pymysql.err.OperationalError(4025, "CONSTRAINT failed")),
        # SQLite refusing a statement it could never run (SQLITE_ERROR), not a busy file.
        sqlite_error(too_many_terms),
        ValueError("a bug"),
        TypeError("a bug"),
    ],
)
def test_any_other_error_is_raised_at_once(error: Exception) -> None:
    assert not unavailable(error)
    slept: list[float] = []
    retried: list[BaseException] = []
    with pytest.raises(type(error)) as raised:
        retry_while_unavailable(failing([error]), retried.append, sleep=slept.append)
    assert raised.value is error
    assert retried == slept == []


def test_an_outage_is_told_once_then_every_few_seconds_then_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    told = OutageLog(
        logging.getLogger("jobyard.test"),
        "database unavailable",
        "database reachable again",
        {"job": 7},
        every=10.0,
        clock=lambda: now[0],
    )
    down = OperationalError("SELECT 1", {}, Exception("connection refused\nmore"))
    caplog.set_level(logging.INFO, logger="jobyard.test")
    for _ in range(40):  # five seconds of tries, eight a second
        told.failed(down, trace=True)
        now[0] += 0.125
    assert [r.getMessage() for r in caplog.records] == ["database unavailable"]
    [first] = caplog.records
    assert (first.levelno, first.job, first.failed_tries) == (logging.WARNING, 7, 1)  # type: ignore[attr-defined]
    assert first.exc_info is not None
    assert first.exc_info[1] is down

    for _ in range(48):  # six more: the 81st try is at the tenth second
        told.failed(down)
        now[0] += 0.125
    assert [r.getMessage() for r in caplog.records[1:]] == [
        "database unavailable (still: 80 more tries failed): "
        "(builtins.Exception) connection refused"
    ]
    told.worked()
    told.worked()  # nothing failed since: nothing to say
    assert [(r.levelno, r.getMessage(), r.failed_tries) for r in caplog.records[2:]] == [  # type: ignore[attr-defined]
        (logging.INFO, "database reachable again", 88)
    ]

    told.failed(down)  # a new outage is told at once, whatever the clock
    assert caplog.records[-1].getMessage() == "database unavailable"


def test_one_ping_at_a_time_however_many_ask() -> None:
    asked: list[int] = []
    hang = threading.Event()

    def ping() -> None:
        asked.append(1)
        if not hang.wait(30):
            raise OperationalError("SELECT 1", {}, Exception("no answer"))

    ping_ = Ping(ping)
    for _ in range(3):  # a hung database: each asker waits its time, none asks again
        with pytest.raises(TimeoutError):
            ping_.answers(within=0.05)
    assert asked == [1]
    hang.set()
    ping_.answers(within=10)
    before = len(asked)  # 1, or 2 if the hung one ended before this ask looked
    ping_.answers(within=10)  # the last one answered: this is a new question
    assert len(asked) == before + 1


def test_a_ping_that_fails_raises_its_error() -> None:
    def ping() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    with pytest.raises(OperationalError):
        Ping(ping).answers(within=10)
