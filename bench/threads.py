"""CPU and context switches per thread of a running process, read from outside.

``/proc/<pid>/task/<tid>/stat`` gives each thread's user and system time, ``status``
its context switches (of its own accord: waiting on a lock, an event, a pipe or the
GIL; and forced, at the end of its time slice); Python
names its threads only for itself, so the names come from ``py-spy dump`` when
py-spy is on the ``PATH`` (the thread id otherwise).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

Times = dict[int, tuple[float, float]]


def thread_times(pid: int) -> Times:
    """``{thread id: (user s, system s)}`` of ``pid``'s live threads."""
    tick = os.sysconf("SC_CLK_TCK")
    times: Times = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # ended meanwhile
            continue
        times[int(tid)] = (int(fields[11]) / tick, int(fields[12]) / tick)
    return times


def thread_names(pid: int) -> dict[int, str]:
    """``{thread id: Python thread name}`` from ``py-spy dump`` ({} without py-spy)."""
    if shutil.which("py-spy") is None:
        return {}
    dump = subprocess.run(
        ["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    return {
        int(found[1]): found[2]
        for found in re.finditer(r'^Thread (\d+) \([^)]*\): "(.*)"$', dump, re.MULTILINE)
    }


def per_thread(pid: int, before: Times, after: Times, per: int, what: str = "job") -> str:
    """Lines of CPU per ``what`` by thread between ``before`` and ``after``, busiest first."""
    names = thread_names(pid)
    used = {
        tid: (user - before.get(tid, (0.0, 0.0))[0], system - before.get(tid, (0.0, 0.0))[1])
        for tid, (user, system) in after.items()
    }
    lines = [
        f"  {names.get(tid, str(tid)):28s} user {1000 * user / per:5.2f}  "
        f"system {1000 * system / per:5.2f} ms/{what}"
        for tid, (user, system) in sorted(used.items(), key=lambda item: -sum(item[1]))
        if user + system > 0
    ]
    total = sum(user + system for user, system in used.values())
    return "\n".join([*lines, f"  {'all threads':28s} {1000 * total / per:.2f} ms/{what}"])


def thread_switches(pid: int) -> Times:
    """``{thread id: (voluntary, forced)}`` context switches of ``pid``'s live threads."""
    counts: Times = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except FileNotFoundError:  # ended meanwhile
            continue
        voluntary = int(fields["voluntary_ctxt_switches"])
        counts[int(tid)] = (voluntary, int(fields["nonvoluntary_ctxt_switches"]))
    return counts


def switches_by_name(pid: int, before: Times, after: Times, per: int, what: str = "job") -> str:
    """Lines of switches per ``what`` between ``before`` and ``after``, by thread name
    (numbers in names folded: ``job-17`` and ``job-20`` are ``job-N``), most first."""
    names = thread_names(pid)
    grouped: dict[str, list[float]] = {}
    for tid, (voluntary, forced) in after.items():
        was = before.get(tid, (0, 0))
        name = re.sub(r"\d+", "N", names.get(tid, "(unnamed)"))
        group = grouped.setdefault(name, [0, 0, 0])
        group[0] += 1
        group[1] += voluntary - was[0]
        group[2] += forced - was[1]
    return "\n".join(
        f"  {name:28s} threads {count:3.0f}  voluntary {voluntary / per:5.2f}  "
        f"forced {forced / per:5.2f} a {what}"
        for name, (count, voluntary, forced) in sorted(grouped.items(), key=lambda g: -g[1][1])
        if voluntary + forced > 0
    )
