"""Writes wait out a database that is out of reach, and only that."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)

from jobyard.store.outage import MAX_DELAY, retry_while_unavailable, unavailable

REFUSED = Exception("server said no")


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
