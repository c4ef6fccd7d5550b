"""PostgreSQL: a job wakes only the workers that could take it (migrations 0011, 0018).

A job of a paused queue wakes nobody; one that needs tags names them, so that a
worker without them sleeps on; resuming a queue wakes its workers at once. The
payloads are read as a worker reads them (:mod:`jobyard.events.wakeups`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from jobyard.events.listen import conninfo
from jobyard.events.wakeups import CHANNEL, NOTHING, Wakeup, wakeup_for
from jobyard.models import JobSpec, NewJob
from jobyard.routing import routes_for
from jobyard.states import JobState
from jobyard.store import Store
from tests.databases import Servers

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(servers: Servers) -> Iterator[Store]:
    store = Store(servers.migrated_url("postgres"))
    yield store
    store.close()


def add_job(store: Store, queue: str, tags: tuple[str, ...] = ()) -> None:
    spec = JobSpec(argv=["true"], tags=tags)
    store.jobs.add_jobs([NewJob("t", {}, spec, queue, 0, JobState.QUEUED)], NOW)


def test_only_a_job_a_worker_can_take_wakes_it(store: Store) -> None:
    mark = uuid.uuid4().hex[:8]  # other tests share the database: only these queues count
    plain, paused = f"plain-{mark}", f"paused-{mark}"
    store.queue.set_queue_paused(paused, True, NOW)
    with psycopg.connect(conninfo(store), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        add_job(store, plain)
        add_job(store, plain, ("gpu", "big"))
        add_job(store, paused)  # nothing: the queue is paused
        add_job(store, paused, ("gpu",))
        store.queue.set_queue_paused(paused, False, NOW)  # resumed: its workers look now
        # Notifications come in commit order: once this one is heard, all before it were.
        end = f"end-{mark}"
        with psycopg.connect(conninfo(store), autocommit=True) as other:
            other.execute("SELECT pg_notify(%s, %s)", (CHANNEL, end))
        heard = []
        for note in listener.notifies(timeout=30):
            if note.payload == end:
                break
            if mark in note.payload:
                heard.append(note.payload)
    assert heard == [f"q:{plain}", f"t:big,gpu:{plain}", f"q:{paused}"]

    plain_worker = routes_for(())
    gpu_worker = routes_for(("big", "gpu", "ssd"))
    work = Wakeup(work=True)
    assert [wakeup_for(p, "w1", None, plain_worker) for p in heard] == [work, NOTHING, work]
    assert [wakeup_for(p, "w1", [plain], gpu_worker) for p in heard] == [work, work, NOTHING]
