"""A worker's namesake on this host counts as running only while its process lives."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psutil
import pytest

from jobyard.models import WorkerInfo
from jobyard.worker.orphans import _process_of
from tests.harness import wait_for


@pytest.fixture
def unreaped() -> Iterator[subprocess.Popen[bytes]]:
    """A child that has exited and that nobody has waited for yet: a zombie."""
    child = subprocess.Popen(["true"])
    try:
        wait_for(
            lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE,
            timeout=10,
            what="the child to exit",
        )
        yield child
    finally:
        child.wait()


def namesake(pid: int) -> WorkerInfo:
    started = datetime.now(UTC) + timedelta(seconds=1)  # registered after its process began
    return WorkerInfo("w", "here", pid, "1", ["*"], 1, started, started)


def test_a_namesake_whose_process_is_dead_but_unreaped_is_not_running(
    unreaped: subprocess.Popen[bytes],
) -> None:
    # Refused its name until its supervisor reaped it, a restarted worker left the
    # jobs of the dead one to their leases instead of recovering them at once.
    assert _process_of(namesake(unreaped.pid)) is False


def test_a_namesake_whose_process_lives_is_running() -> None:
    with subprocess.Popen(["sleep", "30"]) as child:
        try:
            assert _process_of(namesake(child.pid)) is True
        finally:
            child.kill()
