"""PostgreSQL: a new event notifies the live feed only while a feed listens (migration 0014).

Every NOTIFY costs each listening backend of the database a transaction (the
workers' too, on their own channel), so an event insert notifies
``jobyard_events`` only while some API process's hub holds a lease in
``feed_listeners``, and a hub holds one only while it has subscribers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from jobyard.events.gaps import GapWait
from jobyard.events.hub import Filter, Hub, follow
from jobyard.events.listen import conninfo
from jobyard.events.records import LogWritten
from jobyard.models import JobSpec, NewJob
from jobyard.states import JobState
from jobyard.store import Store
from tests.databases import Servers
from tests.harness import wait_for

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LEASE = "INSERT INTO feed_listeners (token, until) VALUES (%s, now() AT TIME ZONE 'UTC' + %s)"


@pytest.fixture
def store(servers: Servers) -> Iterator[Store]:
    store = Store(servers.migrated_url("postgres"))
    yield store
    store.close()


def sql(store: Store, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(conninfo(store), autocommit=True) as conn:
        cursor = conn.execute(query.encode(), params)
        return cursor.fetchall() if cursor.description else []


def add_job(store: Store) -> int:
    new = NewJob("t", {}, JobSpec(argv=["true"]), "default", 0, JobState.QUEUED)
    ((job, _),) = store.jobs.add_jobs([new], NOW)
    return job.id


def log_line(store: Store, job_id: int, seq: int) -> None:
    line = LogWritten(at=NOW, seq=seq, stream="stdout", line=f"line {seq}")
    store.jobs.append_output(job_id, [line], [], {})


def test_an_event_notifies_only_while_a_lease_is_current(store: Store) -> None:
    with psycopg.connect(conninfo(store), autocommit=True) as listener:
        listener.execute("LISTEN jobyard_events")
        job_id = add_job(store)  # no lease: its created event sends nothing
        sql(store, LEASE, "gone", timedelta(seconds=-1))
        log_line(store, job_id, 1)  # an expired lease: nothing either
        sql(store, LEASE, "here", timedelta(minutes=1))
        log_line(store, job_id, 2)
        # Notifications arrive in commit order: once the last one is here, any
        # earlier one would have come before it.
        first = list(listener.notifies(timeout=10, stop_after=1))
        rest = list(listener.notifies(timeout=0.2))
    assert len(first) == 1
    assert first[0].channel == "jobyard_events"
    assert rest == []


def test_the_feed_listens_while_subscribed_and_is_woken_by_notify(store: Store) -> None:
    def leases() -> int:
        return len(sql(store, "SELECT token FROM feed_listeners"))

    def listeners() -> list[int]:
        """Backends whose last statement, done, was the feed's LISTEN (the lease is
        renewed only after 20 s)."""
        query = (
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND query = 'LISTEN jobyard_events' "
            "AND state = 'idle'"
        )
        return [int(str(pid)) for (pid,) in sql(store, query)]

    def backends() -> set[int]:
        query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        return {int(str(pid)) for (pid,) in sql(store, query)}

    job_id = add_job(store)
    hub = Hub(store, poll_interval=60.0, linger=0.2)  # only a NOTIFY wakes it within the test
    hub.start()
    listening: list[int] = []

    def write_once_listening() -> None:
        listening.extend(wait_for(listeners, timeout=10, what="the hub's LISTEN"))
        log_line(store, job_id, 1)

    writer = threading.Thread(target=write_once_listening)

    async def watch() -> LogWritten:
        async for item in follow(hub, Filter(job_id=job_id), 0, idle=10):
            assert item is not None, "no live event within 10 s (not woken by NOTIFY)"
            if isinstance(item.event.record, LogWritten):
                return item.event.record
            writer.start()  # once subscribed: the created event came from the history
        raise AssertionError("the stream ended")

    try:
        assert leases() == 0  # nobody subscribed: nothing listens
        assert listeners() == []
        assert asyncio.run(watch()).line == "line 1"
        assert len(listening) == 1  # one connection, which took the lease before its LISTEN
        # The last subscriber left: after the linger, the lease and the connection go.
        wait_for(lambda: leases() == 0, timeout=10, what="the lease dropped")
        wait_for(lambda: listening[0] not in backends(), timeout=10, what="the LISTEN closed")
    finally:
        hub.stop()
        if writer.is_alive():
            writer.join()


def test_the_events_of_a_removed_job_hold_no_stream_up_for_the_gap_grace(store: Store) -> None:
    """Their ids are gone for good: a reader that knows no transaction can still commit
    them moves on (the hub asks PostgreSQL), instead of waiting the whole grace."""
    now = datetime.now(UTC)  # recent events: their gaps are not settled by age
    new = NewJob("t", {}, JobSpec(argv=["true"]), "default", 0, JobState.QUEUED)
    # An old event first: a new reader starts after it, below the recent gap.
    store.jobs.add_jobs([new], now - timedelta(hours=1))
    [(removed, _)] = store.jobs.add_jobs([new], now)
    for seq in (1, 2):
        store.jobs.append_output(removed.id, [LogWritten(at=now, seq=seq, stream="stdout",
                                                         line="x")], [], {})  # fmt: skip
    [(kept, _)] = store.jobs.add_jobs([new], now)
    assert store.jobs.delete_job(removed.id, frozenset({JobState.QUEUED}))
    hub = Hub(store, poll_interval=0.05, gap_grace=600)  # a gap would hold it for 10 minutes
    hub.start()

    async def first_event() -> int:
        async for item in follow(hub, Filter(job_id=kept.id), 0, idle=30):
            assert item is not None, "nothing within 30 s: held up by the removed job's ids"
            return item.event.id
        raise AssertionError("the stream ended")

    try:
        assert asyncio.run(first_event()) > 0  # its created event, past the gap
    finally:
        hub.stop()


def test_an_event_whose_transaction_is_still_open_is_waited_for_not_stepped_over(
    store: Store,
) -> None:
    """T took the event id 1 below T2's, and its transaction id after two others that
    stay open a while; T2 commits, then those two, and T stays open: the gap before
    T2's event must hold until T commits, however long (the reader asks PostgreSQL)."""
    job_id = add_job(store)
    insert = (
        "INSERT INTO job_events (job_id, kind, seq, at, stream, line) "
        "VALUES (%s, 'log', 1, now(), 'stdout', 'x') RETURNING id"
    )
    xact = "SELECT pg_current_xact_id()"
    gaps = GapWait(600, transactions=store.events.transactions())

    def looks(seconds: float, after: int) -> None:
        """Read as the hub does for a while: never past ``after``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            gaps.before_read()
            ids = [item.event.id for item in store.events.feed(after, 100)]
            assert gaps.contiguous(after, ids) == after, "stepped over an open transaction"
            time.sleep(0.02)

    with (
        psycopg.connect(conninfo(store)) as early,
        psycopg.connect(conninfo(store)) as t2,
        psycopg.connect(conninfo(store)) as between,
        psycopg.connect(conninfo(store)) as t,
    ):
        early.execute(xact)
        t2.execute(xact)
        between.execute(xact)
        [(taken,)] = t.execute(insert.encode(), (job_id,)).fetchall()  # T's xid is the 4th
        held = int(str(taken))
        t2.execute(insert.encode(), (job_id,))
        t2.commit()  # held + 1 is visible, held is not
        looks(0.5, held - 1)  # the gap is seen, and a mark taken
        early.commit()
        between.commit()  # now T is the oldest transaction still running
        looks(1.0, held - 1)
        t.commit()
    gaps.before_read()
    ids = [item.event.id for item in store.events.feed(held - 1, 100)]
    assert ids[:2] == [held, held + 1]
    assert gaps.contiguous(held - 1, ids) == held + 1
