"""The SQLite database's disk fills up under a running server, then space returns.

The database lives on a small tmpfs (mounting one needs root: skipped
otherwise). While the disk is full the API answers 503 problem details with
``Retry-After`` (never a 500), and once space returns every job it acknowledged
runs and ends: nothing acknowledged is lost.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobyard.store import Store
from tests.faults.invariants import check_jobs
from tests.harness import Launcher, wait_for

SIZE = "4m"
FILLER = 64 * 1024  # bytes per write of the file that fills the disk


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of ``SIZE`` bytes, unmounted at the end."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the disk has no byte left (unbuffered: nothing fails at close)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (FILLER, 512):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)


def submit(client: httpx.Client, text: str) -> httpx.Response:
    return client.post("/api/v1/jobs", json={"type": "lines", "args": {"count": 20}, "name": text})


def test_a_full_disk_answers_503_and_loses_nothing_acknowledged(
    disk: Path, launch: Launcher, sqlite_template: Path
) -> None:
    database = disk / "jobs.db"
    shutil.copyfile(sqlite_template, database)
    url = f"sqlite:///{database}"
    server = launch(url, env={"JOBYARD_CONCURRENCY": "2"})
    acknowledged: list[int] = []

    def refused() -> httpx.Response | None:
        response = submit(server.client, f"job {len(acknowledged)}")
        if response.status_code == 201:
            acknowledged.append(response.json()["id"])
            return None
        return response

    fill(disk / "filler")
    full = wait_for(refused, timeout=60, interval=0.01, what="the full disk to refuse a job")
    assert full.status_code == 503, full.text
    assert full.headers["content-type"] == "application/problem+json"
    assert full.headers["retry-after"]
    assert full.json()["status"] == 503
    assert server.client.get("/healthz").status_code in (200, 503)
    assert server.proc is not None
    assert server.proc.poll() is None, server.log()

    (disk / "filler").unlink()
    again = wait_for(lambda: (r := submit(server.client, "after")).status_code == 201 and r)
    acknowledged.append(again.json()["id"])
    store = Store(url)
    try:
        history = check_jobs(store, acknowledged)
        assert all(events[-1].state == "succeeded" for events in history.values()), server.log()
        for job_id in acknowledged:
            printed = [
                line.line for line in store.jobs.log_lines(job_id) if line.stream == "stdout"
            ]
            assert printed == [f"line {i}" for i in range(20)]
    finally:
        store.close()
