"""The C allocator under the process: few arenas, so memory freed after a burst is reused.

glibc gives each thread that allocates an arena of its own (up to eight per core).
A server's thread pool grows to dozens of threads under a burst of requests or
event streams, and what they freed stays in arenas that the next burst may not
reuse: the process grows a few MB per burst. Measured with 300 event streams
opened and dropped abruptly, four times (bench/RESULTS.md): RSS grew 6.7 MB over
the three rounds after a warm-up with glibc's default, 0.8 MB with two arenas.
Python allocates under its global lock anyway, so more arenas buy little.
``MALLOC_ARENA_MAX`` in the environment wins; off glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2


def limit_arenas(count: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``count``; True if done.

    Call it before any thread allocates: arenas made before stay in use.
    """
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _glibc()
    return libc is not None and libc.mallopt(M_ARENA_MAX, count) == 1


def _glibc() -> ctypes.CDLL | None:
    """The process's own C library if it is glibc (musl has no ``gnu_get_libc_version``)."""
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    return libc
