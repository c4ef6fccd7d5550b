"""Store test helpers: a fixed clock, new jobs with defaults, claims, threads that race."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select

from jobyard.models import Job, JobSpec, NewJob, RetryPolicy
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.notes import PENDING
from jobyard.store.tables import job_dependencies, job_events, job_samples

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
SPEC = JobSpec(argv=["echo", "hi"], timeout=60.0, retries=RetryPolicy(max=2))
ONE_MIN = timedelta(minutes=1)
R = TypeVar("R")


def new_job(**changes: Any) -> NewJob:
    base = NewJob(
        type="echo", args={}, spec=SPEC, queue="default", priority=0, state=JobState.QUEUED
    )
    return dataclasses.replace(base, **changes)


def add(store: Store, *jobs: NewJob, now: datetime = T0) -> list[Job]:
    return [job for job, _ in store.jobs.add_jobs(jobs or [new_job()], now)]


def claim(
    store: Store,
    limit: int = 10,
    queues: list[str] | None = None,
    worker: str = "w1",
    now: datetime = T0,
) -> list[Job]:
    return store.queue.claim_jobs(worker, "host-a", queues, limit, now, now + ONE_MIN).jobs


def stored(store: Store, job_id: int) -> Job:
    job = store.jobs.get_job(job_id)
    assert job is not None, f"job {job_id} is gone"
    return job


def in_threads(count: int, work: Callable[[int], R]) -> list[R]:
    """``work(0)`` … ``work(count - 1)``, all at once in threads; their results in order."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(work, range(count)))


def assert_fields(obj: Any, **expected: Any) -> None:
    assert {name: getattr(obj, name) for name in expected} == expected


def rows_of(store: Store, job_id: int) -> dict[str, int]:
    """How many rows of each table hang on the job (0 everywhere once it is removed)."""
    counts = {}
    with store.engine.connect() as conn:
        for table in (job_events, job_samples, job_dependencies):
            query = select(func.count()).select_from(table).where(table.c.job_id == job_id)
            counts[table.name] = int(conn.execute(query).scalar_one())
    return counts


def message(source: int, channel: str = "mail", **changes: Any) -> dict[str, Any]:
    row = {
        "event": "failed",
        "job_id": 1,
        "run_id": None,
        "status": PENDING,
        "channel": channel,
        "recipients": ["ops@example.test"],
        "source_event": source,
        "attempts": 0,
        "next_attempt_at": T0,
        "data": {"event": "failed"},
        "created_at": T0,
        "updated_at": T0,
    }
    return row | changes
