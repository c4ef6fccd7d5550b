"""Dumps ``tracemalloc`` snapshots from inside a running server, for the soak.

Only on the import path when ``bench.soak --tracemalloc-dump PATH`` starts the server
(this folder is put first on its ``PYTHONPATH``); Python imports a ``sitecustomize``
at start-up, before ``jobyard`` runs, so no code of the package carries this.
With ``JOBYARD_TRACEMALLOC_DUMP=<path>`` set, a daemon thread starts tracing
``JOBYARD_TRACEMALLOC_AFTER`` seconds after launch (default 0; tracing the imports
of a server start on a busy machine takes minutes, and a leak shows in the steady
state anyway) with ``JOBYARD_TRACEMALLOC_FRAMES`` frames (default 25; 0: no tracing,
figures only), then writes
``<path>.<n>`` every ``JOBYARD_TRACEMALLOC_EVERY`` seconds (default 60), numbered
from 0, and appends a line of figures to ``<path>.stats`` (RSS, what tracemalloc
traces, what the SQLite library and glibc's heap hold: memory tracemalloc cannot
see). Taking a snapshot inside the process, instead of through a debugger,
cannot freeze the main thread.

The variables are removed from the environment at once, so that the processes
the server starts (its pool children, the jobs) are neither traced nor dumping.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from typing import Any

MALLINFO2 = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
             "uordblks", "fordblks", "keepcost")  # fmt: skip


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in MALLINFO2]


def _libc_stats() -> dict[str, int]:
    """glibc's view of its heap: in use (``uordblks``), free (``fordblks``), mmapped."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = _Mallinfo2
    except (OSError, AttributeError):
        return {}
    info = libc.mallinfo2()
    return {name: int(getattr(info, name)) for name in ("arena", "hblkhd", "uordblks", "fordblks")}


def _sqlite_stats() -> dict[str, int]:
    """What the SQLite library itself holds (page caches, statements): outside tracemalloc."""
    if "_sqlite3" not in sys.modules:
        return {}
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
    except OSError:
        return {}
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return {"sqlite_used": int(lib.sqlite3_memory_used())}


def _obmalloc_stats() -> dict[str, int]:
    """Python's small-object allocator: its arenas are mmapped, outside glibc's figures.

    ``sys._debugmallocstats`` prints to the C stderr only: it is pointed at a file for
    the call (what other threads print meanwhile lands there too; this is a bench).
    """
    import tempfile

    found: dict[str, int] = {}
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        for line in out:
            name, _, value = line.rpartition("=")
            name = name.strip().lstrip("#").strip()
            if name.startswith(("arenas", "bytes in", "unused pools", "Total")):
                found.setdefault("ob " + name, int(value.strip().replace(",", "") or 0))
    return found


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def stats() -> dict[str, Any]:
    """One line of figures, written beside each snapshot (``<path>.stats``)."""
    traced, _peak = tracemalloc.get_traced_memory()
    return {
        "at": time.time(),
        "rss": _rss(),
        "traced": traced,
        "gc_objects": len(gc.get_objects()),
        "threads": threading.active_count(),
        **_sqlite_stats(),
        **_libc_stats(),
        **_obmalloc_stats(),
    }


def _trace_and_dump(path: str, after: float, frames: int, every: float) -> None:
    time.sleep(after)  # timers, not synchronisation: tracing starts, then one dump a period
    if frames:
        tracemalloc.start(frames)
    n = 0
    while True:
        time.sleep(every)
        if frames:  # 0 frames: figures only (a snapshot's own objects move RSS by MBs)
            snapshot = tracemalloc.take_snapshot()
            snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            snapshot.dump(f"{path}.{n}.tmp")
            os.replace(f"{path}.{n}.tmp", f"{path}.{n}")  # readers never see half a file
        with open(f"{path}.stats", "a") as lines:
            lines.write(json.dumps({"n": n, **stats()}) + "\n")
        n += 1


def _start() -> None:
    path = os.environ.pop("JOBYARD_TRACEMALLOC_DUMP", None)
    after = float(os.environ.pop("JOBYARD_TRACEMALLOC_AFTER", "0"))
    frames = int(os.environ.pop("JOBYARD_TRACEMALLOC_FRAMES", "25"))
    every = float(os.environ.pop("JOBYARD_TRACEMALLOC_EVERY", "60"))
    if path:
        args = (path, after, frames, every)
        threading.Thread(target=_trace_and_dump, args=args, name="tracedump", daemon=True).start()


_start()
