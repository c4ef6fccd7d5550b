"""A job's processes as ``ps`` shows them: the tree under its leader, and whether it is gone."""

from __future__ import annotations

import psutil

from tests.harness import Server, wait_for

TIMEOUT = 30.0  # generous: the machine may be loaded


def gone(process: psutil.Process) -> bool:
    """Ended: reaped, or a zombie its parent has not reaped yet."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def all_gone(processes: list[psutil.Process]) -> bool:
    return all(gone(p) for p in processes)


def tree(pid: int) -> list[psutil.Process]:
    """The leader and every descendant."""
    leader = psutil.Process(pid)
    return [leader, *leader.children(recursive=True)]


def tree_of(pid: int, count: int, children: str | None = "sleep") -> list[psutil.Process]:
    """The job's processes, once there are ``count`` of them (all ``children`` below the leader).

    Waiting for the children's names waits until they have exec'd: a shell that vforked
    waits in state D, not T, until its child execs.
    """

    def probe() -> list[psutil.Process] | None:
        procs = tree(pid)
        if len(procs) < count:
            return None
        try:
            named = children is None or all(p.name() == children for p in procs[1:])
        except psutil.NoSuchProcess:
            return None
        return procs if named else None

    return wait_for(probe, TIMEOUT)


def running_with_processes(server: Server, job_id: int, count: int) -> list[psutil.Process]:
    """The processes of a job ``server`` runs, once there are ``count`` of them."""
    job = server.wait_state(job_id, "running")

    def probe() -> list[psutil.Process] | None:
        pid = server.job(job_id)["pid"] or job["pid"]
        if not pid:
            return None
        processes = tree(pid)
        return processes if len(processes) >= count else None

    return wait_for(probe, what=f"{count} processes of job {job_id}")
