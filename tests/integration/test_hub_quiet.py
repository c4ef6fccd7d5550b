"""The feed hub reads the event log only while someone listens."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from anyio import fail_after, to_thread
from sqlalchemy import event

from jobyard.config import load_config
from jobyard.events.hub import Filter, Hub, follow
from jobyard.events.records import FeedEvent, JobTerminated
from jobyard.manager import Submission
from jobyard.models import JobUpdate
from jobyard.node import Node
from jobyard.settings import Settings
from jobyard.states import JobState
from jobyard.store import Store
from tests.harness import CONFIG, wait_for
from tests.stores import T0, add, claim


def test_no_subscriber_no_read_then_a_subscriber_gets_every_event_once(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'quiet.db'}", python_pool=0)
    node = Node(settings, load_config(CONFIG), scheduler=False)
    reads: list[str] = []

    @event.listens_for(node.store.engine, "before_cursor_execute")
    def count(*args: Any) -> None:
        if threading.current_thread().name == "feed-hub":
            reads.append(args[2])

    node.start()
    try:
        ids = [
            node.manager.submit(Submission(type="echo", args={"text": "x"}))[0].id for _ in range(5)
        ]

        def all_done() -> bool:
            jobs = [node.store.jobs.get_job(job_id) for job_id in ids]
            return all(job is not None and job.state is JobState.SUCCEEDED for job in jobs)

        wait_for(all_done, timeout=30, what="the jobs done")
        assert reads == []

        def submit() -> int:
            return node.manager.submit(Submission(type="echo", args={"text": "y"}))[0].id

        async def watch() -> list[int]:
            seen: list[int] = []
            last = None
            async for item in follow(node.hub, Filter(kinds=("state",)), 0, idle=5):
                assert item is not None, "no event within 5 s"
                seen.append(item.event.id)
                # Subscribed, and reading the history: the new job's events come live. (Sent
                # before, they could all be history by the time the stream subscribed.)
                if last is None:
                    last = await to_thread.run_sync(submit)
                if isinstance(item.event.record, JobTerminated) and item.event.job_id == last:
                    return seen
            return seen

        seen = asyncio.run(watch())
        history = node.store.events.feed(0, 1000, kinds=("state",))
        assert seen == [item.event.id for item in history]  # every event, once, in order
        assert reads  # the hub read while someone listened
    finally:
        node.stop()


@pytest.mark.sql_only("the hub tails a database's event log")
def test_a_subscriber_after_retention_emptied_the_log_gets_new_events_at_once(
    store: Store,
) -> None:
    """The first subscriber's place is past the ids retention removed: from 0, the hub
    waited a grace for each as for an event still committing before it sent a new one,
    and a stream missed the events removed meanwhile."""
    [job] = add(store)
    claim(store)
    ended = {"state": JobState.SUCCEEDED, "finished_at": T0}
    assert store.jobs.update_job(JobUpdate(job.id, frozenset({JobState.RUNNING}), ended), T0)
    later = T0 + timedelta(days=1)
    for _ in range(3):
        store.retention.prune_events(later, 1000, later)
    assert store.events.latest(10) == []  # every event removed
    removed = store.retention.pruned_through()
    hub = Hub(store, poll_interval=0.01, gap_grace=60)
    hub.start()

    async def first_new() -> FeedEvent:
        submitted = False
        with fail_after(20):  # well within the grace
            async for item in follow(hub, Filter(), removed, idle=0.1):
                if item is not None:
                    return item
                if not submitted:  # subscribed: the new job's events come live
                    submitted = bool(await to_thread.run_sync(add, store))
        raise AssertionError("the stream ended")

    try:
        assert hub.prepare() == removed > 0
        assert asyncio.run(first_new()).event.id > removed
    finally:
        hub.stop()
