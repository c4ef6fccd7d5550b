"""How one attempt names the way its process ended (the job's ``reason``)."""

from __future__ import annotations

from jobyard.outcomes import Reason
from jobyard.runner.contract import Result, spawn_failed
from jobyard.worker.attempt import _reason_of


def result(exit_code: int | None, error: str | None = None, signal: int | None = None) -> Result:
    return Result(exit_code, signal, error, 0.1, 1024, succeeded=exit_code == 0)


def test_a_spawn_failure_is_told_by_its_field_not_its_text() -> None:
    assert _reason_of(spawn_failed("command not found: nope", 127)) == Reason.SPAWN
    # a job of its own that exits 127 and prints "spawn" is an ordinary exit code
    assert _reason_of(result(127, "exit code 127: spawn of helper failed")) == Reason.EXIT


def test_signals_exits_and_exceptions() -> None:
    assert _reason_of(result(0)) is None
    assert _reason_of(result(None, signal=9)) == Reason.SIGNAL
    assert _reason_of(result(3)) == Reason.EXIT
    assert _reason_of(result(None, "ValueError: boom")) == Reason.EXCEPTION
