"""Processes: start them in sessions of their own, stop every one of them, count their CPU.

Every process the harness starts is registered in :data:`STARTED` and stopped by
:func:`stop_all` (called at the end of the run, on errors and on Ctrl-C).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]  # the repository: ``bench.compare`` imports from it
STARTED: list[subprocess.Popen[bytes]] = []


def start(
    command: Sequence[str], log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session, output to ``log``, ``bench`` importable."""
    path = os.environ.get("PYTHONPATH")
    environ = os.environ | {"PYTHONPATH": f"{ROOT}:{path}" if path else str(ROOT)}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(command),
            cwd=log.parent,
            env=environ | dict(env or {}),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    STARTED.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM (each system's own graceful stop), then SIGKILL whatever of its tree is left."""
    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        tree = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    for each in tree:
        with contextlib.suppress(psutil.Error):
            each.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(5)
    if proc in STARTED:
        STARTED.remove(proc)


def stop_all() -> None:
    for proc in reversed(list(STARTED)):
        stop(proc, timeout=5)


def alive(proc: subprocess.Popen[bytes], log: Path) -> None:
    """Raise with the log's tail if ``proc`` has exited."""
    if proc.poll() is not None:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{tail}")


# -- measuring ---------------------------------------------------------------
def tree_of(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_seconds(procs: Iterable[psutil.Process]) -> float:
    """User + system CPU of these processes and of the children they reaped.

    A child that ends between two readings moves from its own counters to its
    parent's ``children_*`` ones, so the difference of two readings of a whole
    tree counts it once.
    """
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def rss_bytes(procs: Iterable[psutil.Process]) -> int:
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


def redis_servers() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == "redis-server"]


def postgres_backends(database: str) -> list[psutil.Process]:
    """The PostgreSQL backends serving ``database`` (``postgres: user db …`` in ps)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith("postgres:") and f" {database} " in cmdline:
            found.append(proc)
    return found


@dataclass
class Roles:
    """Named groups of processes (a role: a started process with its descendants)."""

    pids: dict[str, int] = field(default_factory=dict)  # role → root pid
    servers: str = ""  # "redis" or a PostgreSQL database name

    def groups(self) -> dict[str, list[psutil.Process]]:
        groups = {role: tree_of(pid) for role, pid in self.pids.items()}
        if self.servers == "redis":
            groups["redis-server"] = redis_servers()
        elif self.servers:
            groups["postgres"] = postgres_backends(self.servers)
        return groups

    def cpu(self) -> dict[str, float]:
        return {role: cpu_seconds(procs) for role, procs in self.groups().items()}

    def rss(self) -> int:
        """RSS of the system's own processes (not the shared servers)."""
        return sum(rss_bytes(tree_of(pid)) for pid in self.pids.values())
