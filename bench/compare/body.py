"""The job body every system runs: a no-op that says when it ran.

The body sends one UDP datagram (``"<key> <time.time()>"``) to the harness at
``BENCH_STAMP_ADDR``; that stamp is how the harness sees a job start (latency)
and how it sees the last job of a throughput phase end. A datagram costs a few
microseconds and no system-specific storage, so every system pays the same.
"""

from __future__ import annotations

import os
import socket
import time

_sock: socket.socket | None = None
_addr: tuple[str, int] | None = None


def noop(key: int) -> None:
    """Do nothing, then tell the harness that job ``key`` ran (and when)."""
    global _sock, _addr
    if _sock is None:
        host, port = os.environ["BENCH_STAMP_ADDR"].rsplit(":", 1)
        _sock, _addr = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), (host, int(port))
    assert _addr is not None
    _sock.sendto(b"%d %.6f" % (key, time.time()), _addr)
