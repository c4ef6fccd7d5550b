"""A deadlock's victim: told apart from other errors, and an action that was one is tried again.

PostgreSQL and MariaDB end a deadlock by rolling one transaction back whole. On
MariaDB a user's pause or resume could be that victim beside a worker's writes
to the same job, and was answered 503 "the database is unavailable".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from jobyard.dependencies import Dependencies
from jobyard.jobtypes.catalog import Catalog
from jobyard.jobtypes.spec import parse_job_type
from jobyard.manager import JobManager, Submission
from jobyard.models import JobUpdate
from jobyard.states import Control, Event
from jobyard.store import Store
from jobyard.store.outage import deadlocked
from jobyard.store.tables import jobs
from tests.databases import Servers

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SERVERS = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


@pytest.fixture(params=SERVERS)
def manager(request: pytest.FixtureRequest, servers: Servers) -> Iterator[JobManager]:
    store = Store(servers.migrated_url(request.param))
    catalog = Catalog(store, {"nap": parse_job_type("nap", {"command": ["sleep", "60"]})})
    yield JobManager(store, catalog, Dependencies(store), clock=lambda: NOW)
    store.close()


def victim(store: Store, first: int, second: int) -> Exception:
    """The error of the transaction the database rolled back: two transactions each
    update one job, then the other's."""
    errors: list[Exception] = []
    both = threading.Barrier(2)

    def cross(mine: int, theirs: int) -> None:
        try:
            with store.engine.begin() as conn:
                conn.execute(update(jobs).where(jobs.c.id == mine).values(priority=1))
                both.wait(10)
                conn.execute(update(jobs).where(jobs.c.id == theirs).values(priority=2))
        except Exception as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=cross, args=pair) for pair in ((first, second), (second, first))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 1, errors
    return errors[0]


def test_an_action_that_was_a_deadlock_s_victim_is_tried_again(
    manager: JobManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = manager.store
    assert isinstance(store, Store)
    first, second = (manager.submit(Submission(type="nap"))[0].id for _ in range(2))
    error = victim(store, first, second)
    assert deadlocked(error)
    assert not deadlocked(RuntimeError("deadlock"))
    store.queue.claim_jobs("w1", "host", None, 2, NOW, NOW + timedelta(hours=1))

    tries: list[JobUpdate] = []
    write = store.jobs.update_job

    def rolled_back_once(change: JobUpdate, now: datetime) -> Any:
        tries.append(change)
        if len(tries) == 1:
            raise error  # as the database rolled the first try back
        return write(change, now)

    monkeypatch.setattr(store.jobs, "update_job", rolled_back_once)
    assert manager.act(first, Event.PAUSE).control is Control.PAUSE
    assert len(tries) == 2
