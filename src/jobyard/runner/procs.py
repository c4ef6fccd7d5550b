"""Process groups we started: signal them, measure them, kill them without leftovers.

A job runs as the leader of its own process group (its pgid is its pid).
Signals go to the whole group. ``kill`` also reaches descendants that moved to
another session (``setsid``), as long as they were seen: in a snapshot of the
tree taken just before the kill, or in an earlier :meth:`ProcessGroup.sample`.

The pid of an exited leader stays reserved while it is a zombie, so we signal
the group only until we reap the leader (under one lock): after that, the pid
could belong to somebody else.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import threading
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import psutil

TOKEN_VAR = "JOBYARD_JOB_TOKEN"
OWNER_VAR = "JOBYARD_WORKER_PID"  # the pid of the worker that started the job's process
REAP_BOUND = 1.0  # seconds to wait for killed leftovers to die before a Result is given
FEW_PIDS = 64  # pids allocated since a job started that are cheaper to try than to list
_STOP_LOOKS = 3  # walks of a job's tree to stop what was forked while it was being stopped


@dataclass(frozen=True)
class Exit:
    """A reaped process: its wait status and resource usage."""

    status: int
    rusage: resource.struct_rusage

    @property
    def code(self) -> int | None:
        return os.WEXITSTATUS(self.status) if os.WIFEXITED(self.status) else None

    @property
    def signal(self) -> int | None:
        return os.WTERMSIG(self.status) if os.WIFSIGNALED(self.status) else None

    @property
    def error(self) -> str | None:
        if self.signal is not None:
            return f"killed by signal {self.signal}"
        return None if self.code == 0 else f"exit code {self.code}"

    @property
    def cpu_seconds(self) -> float:
        return self.rusage.ru_utime + self.rusage.ru_stime

    @property
    def max_rss(self) -> int:
        """The leader's peak RSS, if known: 0 when it may just be inherited from us.

        A forked child starts with a copy of its parent's memory (and a vforked one
        records the parent's peak when it execs), so ``ru_maxrss`` only says
        something about the job when it exceeds our own peak.
        """
        mine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # our VmHWM, no file to read
        return self.rusage.ru_maxrss * 1024 if self.rusage.ru_maxrss > mine else 0  # KiB


class ProcessGroup:
    """A process-group leader we spawned and everything it started.

    Nothing here reads the whole process table: descendants are found by walking
    down from the leader (``/proc/<pid>/task/<tid>/children``), and only when asked
    (a kill, a sample), so that a job that ends quickly costs no look at ``/proc``.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._leader: psutil.Process | None = None  # made at the first sample
        self._seen: dict[int, psutil.Process] = {}
        self._lock = threading.Lock()
        self._reaped = False

    def signal(self, sig: int) -> None:
        with self._lock:
            if not self._reaped:
                _killpg(self.pid, sig)

    def stop(self) -> None:
        """SIGSTOP the group and every descendant, those that left it (``setsid``) too."""
        with self._lock:
            if self._reaped:
                return
            _killpg(self.pid, signal.SIGSTOP)
            stopped: set[int] = set()
            for _ in range(_STOP_LOOKS):  # one stopped mid-fork leaves its new child running
                fresh = [p for p in descendants_of(self.pid) if p.pid not in stopped]
                if not fresh:
                    break
                _signal_all(fresh, signal.SIGSTOP)
                stopped.update(p.pid for p in fresh)

    def cont(self) -> None:
        """SIGCONT the group and every descendant (what :meth:`stop` stopped)."""
        with self._lock:
            if self._reaped:
                return
            _signal_all(descendants_of(self.pid), signal.SIGCONT)
            _killpg(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the group and every descendant, including those that left the group."""
        with self._lock:
            if not self._reaped:
                self._remember(descendants_of(self.pid))  # before the leader dies
                _killpg(self.pid, signal.SIGKILL)
            _signal_all(self._seen.values(), signal.SIGKILL)

    def reap(self) -> Exit:
        """Kill what is left of the group, then reap the leader (which must have exited)."""
        with self._lock:
            _killpg(self.pid, signal.SIGKILL)  # the zombie leader still holds the pgid
            _signal_all(self._seen.values(), signal.SIGKILL)
            _, status, rusage = os.wait4(self.pid, 0)
            self._reaped = True
        _wait_dead(self._seen.values(), REAP_BOUND)
        return Exit(status, rusage)

    def sample(self) -> tuple[int, float]:
        """(rss bytes, cpu seconds) summed over the leader and its descendants now."""
        with self._lock:
            if self._reaped:
                return 0, 0.0
            if self._leader is None:
                try:
                    self._leader = psutil.Process(self.pid)  # ours and unreaped: not reused
                except psutil.Error:
                    return 0, 0.0
            tree = descendants_of(self.pid)
            self._remember(tree)
            return _usage([self._leader, *tree])

    def descendants(self) -> list[psutil.Process]:
        with self._lock:
            return [] if self._reaped else descendants_of(self.pid)

    def _remember(self, procs: Iterable[psutil.Process]) -> None:
        alive = {pid: p for pid, p in self._seen.items() if p.is_running()}
        self._seen = alive | {p.pid: p for p in procs}


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal_all(procs: Iterable[psutil.Process], sig: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)  # psutil refuses if the pid now belongs to another process


def _wait_dead(procs: Iterable[psutil.Process], bound: float) -> None:
    """Give SIGKILLed processes a moment to die, so that a Result means they are gone."""
    deadline = time.monotonic() + bound
    alive = list(procs)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.005)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def pid_in_use(pid: int) -> bool:
    """Whether a process (not a zombie) has ``pid``, whichever process it is."""
    try:
        return _alive(psutil.Process(pid))
    except psutil.Error:
        return False


def descendants_of(pid: int) -> list[psutil.Process]:
    """Every live descendant of ``pid``, found by walking down from it."""
    procs = []
    for child in descendant_pids(pid):
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(child))
    return procs


def descendant_pids(pid: int) -> list[int]:
    """The pids below ``pid``, parents before their children.

    Reads only the tree's own ``children`` files, where the kernel has them
    (psutil's ``children()`` reads the ``stat`` of every process on the host).
    """
    if not _HAS_CHILDREN_FILES:
        with contextlib.suppress(psutil.Error):
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        return []
    found: list[int] = []
    todo = [pid]
    while todo:
        children = child_pids(todo.pop())
        found += children
        todo += children
    return found


def child_pids(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (empty if it is gone)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    pids: list[int] = []
    for tid in tasks:
        pids += [int(word) for word in read_proc(f"/proc/{pid}/task/{tid}/children").split()]
    return pids


_HAS_CHILDREN_FILES = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def _usage(procs: Iterable[psutil.Process]) -> tuple[int, float]:
    rss, cpu = 0, 0.0
    for proc in procs:
        try:
            with proc.oneshot():
                rss += proc.memory_info().rss
                t = proc.cpu_times()
        except psutil.Error:
            continue
        # children_* hold the reaped children of each process: nothing counted twice
        cpu += t.user + t.system + t.children_user + t.children_system
    return rss, cpu


class Usage:
    """The running peaks of one job's samples (CPU never goes back down)."""

    def __init__(self, cpu_baseline: float = 0.0) -> None:
        self.baseline = cpu_baseline
        self.peak_rss = 0
        self.cpu = 0.0

    def add(self, rss: int, cpu: float) -> tuple[int, float]:
        self.add_peak(rss)
        self.cpu = max(self.cpu, cpu - self.baseline)
        return rss, self.cpu

    def add_peak(self, rss: int) -> None:
        self.peak_rss = max(self.peak_rss, rss)


def peak_rss_of(pid: int | str) -> int:
    """VmHWM of a process, in bytes (0 if unknown)."""
    status = read_proc(f"/proc/{pid}/status")
    at = status.find(b"\nVmHWM:")
    if at < 0:
        return 0
    return int(status[at + 7 : status.index(b"kB", at)]) * 1024


def read_proc(path: str) -> bytes:
    """A small ``/proc`` file, in one read without Python's file objects (b"" if gone)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""
    finally:
        os.close(fd)


def kill_job_processes(
    token: str, wait: float = 0.0, *, since: int | None = None, owner: int | None = None
) -> int:
    """SIGCONT + SIGKILL every process whose environment has JOBYARD_JOB_TOKEN=<token>.

    For orphans left by a worker that died: each job's processes carry the
    token of their attempt. Waits up to ``wait`` seconds for them to die.
    Returns how many processes were signalled.

    ``since`` is the pid of the job's first process, when it was started a
    moment ago: its descendants got the pids allocated after it, so only those
    are looked at instead of every process on the host. (Pids are handed out in
    a cycle; going once round it takes tens of thousands of process starts.)
    """
    needle = f"{TOKEN_VAR}={token}".encode()
    me = os.getpid()
    candidates = _all_pids() if since is None else _pids_after(since)
    found = [pid for pid in candidates if pid != me and _carries(_environ(pid), needle, owner)]
    killed: list[int] = []
    for pid in found:
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # died meanwhile (killing one of a job's processes can end others)
        except PermissionError:
            continue
        killed.append(pid)
    if wait and killed:
        _wait_dead(_processes(killed), wait)
    return len(killed)


def _carries(environ: list[bytes], needle: bytes, owner: int | None) -> bool:
    """Whether a process's ``environ`` has the token ``needle`` and, with ``owner``, was
    not started by another live worker (a worker of another database on this host may
    have made the same token: a namesake, the same job id). One started by ``owner``,
    by a worker gone too (an earlier namesake), or before processes carried their
    worker's pid is taken on its token."""
    if needle not in environ:
        return False
    if owner is None:
        return True
    prefix = f"{OWNER_VAR}=".encode()
    started_by = [entry[len(prefix) :] for entry in environ if entry.startswith(prefix)]
    others = [pid for pid in started_by if pid != str(owner).encode()]
    return not any(pid.isdigit() and pid_in_use(int(pid)) for pid in others)


def processes_of_workers(
    owners: Collection[int],
) -> dict[tuple[int, str], list[psutil.Process]]:
    """``{(owner, token): processes}`` of the job processes on this host that a worker of
    ``owners`` (their pids) started, by their environment (``OWNER_VAR``, ``TOKEN_VAR``).

    Only in this process's pid namespace: a pid seen from another one (a container's)
    names another process here, so whether its worker lives cannot be told from here.
    """
    wanted = {f"{OWNER_VAR}={owner}".encode(): owner for owner in owners}
    prefix = f"{TOKEN_VAR}=".encode()
    me, namespace = os.getpid(), _pid_namespace("self")
    found: dict[tuple[int, str], list[psutil.Process]] = {}
    for pid in _all_pids():
        environ = _environ(pid) if pid != me else []
        owner = next((wanted[entry] for entry in environ if entry in wanted), None)
        token = next((entry[len(prefix) :] for entry in environ if entry.startswith(prefix)), None)
        if owner is None or token is None or _pid_namespace(str(pid)) != namespace:
            continue
        with contextlib.suppress(psutil.Error):  # gone meanwhile
            found.setdefault((owner, token.decode(errors="replace")), []).append(
                psutil.Process(pid)
            )
    return found


def kill_processes(procs: Iterable[psutil.Process]) -> int:
    """SIGCONT + SIGKILL each of ``procs`` (a stopped one dies too), unless its pid went to
    another process since it was found; how many were signalled."""
    killed = 0
    for proc in procs:
        try:
            proc.send_signal(signal.SIGCONT)  # psutil checks it is still the same process
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            continue
        killed += 1
    return killed


def _pid_namespace(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _pids_after(first: int) -> Iterable[int]:
    """The pids allocated after ``first`` (every pid if that cannot be known).

    A few: each is looked at (most are gone). Many: the live ones are listed.
    """
    last = read_proc("/proc/sys/kernel/ns_last_pid").strip()
    if not last.isdigit():
        return _all_pids()
    end = int(last)
    if end >= first:
        if end - first <= FEW_PIDS:
            return range(first + 1, end + 1)
        return [pid for pid in _all_pids() if first < pid <= end]
    return [pid for pid in _all_pids() if pid > first or pid <= end]  # the cycle wrapped


def _processes(pids: Iterable[int]) -> list[psutil.Process]:
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    return procs


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []
