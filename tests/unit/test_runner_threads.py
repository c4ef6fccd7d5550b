"""Supervisor threads are kept for the next task instead of one started per job."""

from __future__ import annotations

import threading

from jobyard.runner.threads import Threads
from tests.harness import wait_for

TIMEOUT = 30.0


def test_a_finished_thread_takes_the_next_task() -> None:
    threads = Threads("idle")
    ran: list[str] = []
    for i in range(5):
        done = threading.Event()

        def task(i: int = i, done: threading.Event = done) -> None:
            ran.append(f"{i} {threading.current_thread().name}")
            done.set()

        threads.run(f"task-{i}", task)
        assert done.wait(TIMEOUT)
        wait_for(lambda: threads.idle, TIMEOUT)  # it counts itself idle after the task
    assert [line.split()[1] for line in ran] == [f"task-{i}" for i in range(5)]
    assert threads.started == 1


def test_tasks_at_the_same_time_get_threads_of_their_own() -> None:
    threads = Threads("idle")
    release, both = threading.Event(), threading.Barrier(3)

    def task() -> None:
        both.wait(TIMEOUT)
        release.wait(TIMEOUT)

    threads.run("a", task)
    threads.run("b", task)
    both.wait(TIMEOUT)  # both run at once: a second thread was started
    release.set()
    assert threads.started == 2
