"""The harness side of the job body: collect the stamps the jobs send."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable


class Stamps:
    """A UDP listener on 127.0.0.1 that records ``key → time the body ran``."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 2**20)
        self._sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._sock.getsockname()[1]}"
        self.seen: dict[int, float] = {}
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._receive, name="stamps", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while True:
            try:
                data = self._sock.recv(64)
            except OSError:
                return  # closed
            key, at = data.split()
            with self._changed:
                self.seen[int(key)] = float(at)
                self._changed.notify_all()

    def wait(self, keys: Iterable[int], timeout: float) -> float:
        """Until every key has its stamp; the latest stamp. Raises after ``timeout``."""
        wanted = list(keys)
        missing = wanted
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                # Only the keys still missing are checked again: a long wait stays cheap.
                missing = [k for k in missing if k not in self.seen]
                if not missing:
                    return max(self.seen[k] for k in wanted)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(missing)} of {len(wanted)} jobs never ran")
                self._changed.wait(min(left, 1.0))

    def close(self) -> None:
        self._sock.close()
