"""The feed hub reads the event log only while someone listens."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from anyio import to_thread
from sqlalchemy import event

from jobyard.config import load_config
from jobyard.events.hub import Filter, follow
from jobyard.events.records import JobTerminated
from jobyard.manager import Submission
from jobyard.node import Node
from jobyard.settings import Settings
from jobyard.states import JobState
from tests.harness import CONFIG, wait_for


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
