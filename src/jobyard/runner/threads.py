"""Daemon threads that wait for the next task instead of ending.

Starting a thread waits until the new thread runs: on a busy machine that is a
context switch per command job. A thread that finished its task here waits for
the next one; there are never more threads than tasks that ran at the same time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

Task = Callable[[], None]


class Threads:
    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: queue.SimpleQueue[tuple[str, Task]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self.started = 0  # threads started so far

    @property
    def idle(self) -> int:
        with self._lock:
            return self._idle

    def run(self, name: str, task: Task) -> None:
        """Run ``task`` on an idle thread, or on a new one if none is idle."""
        with self._lock:
            # Through the queue, not the new thread's arguments: a Thread keeps those
            # until it ends, and these never end (its job's run would stay alive).
            self._tasks.put((name, task))
            if self._idle:
                self._idle -= 1
                return
            self.started += 1
        threading.Thread(target=self._serve, name=name, daemon=True).start()

    def _serve(self) -> None:
        me = threading.current_thread()
        while True:
            me.name, task = self._tasks.get()
            task()  # a task handles its own errors: an escaped one ends this thread
            del task  # waiting, keep nothing of the last task alive (its job's run)
            me.name = self._name
            with self._lock:
                self._idle += 1
