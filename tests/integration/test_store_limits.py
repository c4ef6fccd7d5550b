"""Claims under cluster-wide limits and routing tags, on every backend.

The races use one store (so one connection) per claimer, as separate workers do.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from jobyard.jobtypes.catalog import Catalog
from jobyard.limits import Limit, Scope
from jobyard.models import Job, JobSpec, JobUpdate, NewJob
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.tables import jobs, limits
from tests.databases import Servers
from tests.harness import wait_for
from tests.stores import in_threads

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
LIVE = frozenset({JobState.RUNNING, JobState.PAUSED})
QUEUE, TYPE = Scope.QUEUE, Scope.TYPE


def new_job(
    type_: str = "echo", queue: str = "default", priority: int = 0, tags: tuple[str, ...] = ()
) -> NewJob:
    spec = JobSpec(argv=["true"], tags=tags)
    return NewJob(type_, {}, spec, queue, priority, JobState.QUEUED)


def add(store: Store, *jobs: NewJob) -> list[Job]:
    return [job for job, _ in store.jobs.add_jobs(jobs, T0)]


def claim(
    store: Store,
    limit: int = 10,
    worker: str = "w1",
    queues: list[str] | None = None,
    tags: tuple[str, ...] = (),
) -> list[Job]:
    return store.queue.claim_jobs(
        worker, "host-a", queues, limit, T0, T0 + timedelta(minutes=1), tags=tags
    ).jobs


def limit(store: Store, *limits: Limit) -> None:
    store.limits.sync_limits(limits, {lim.key for lim in limits}, T0)


def finish(store: Store, jobs: list[Job]) -> None:
    for job in jobs:
        store.jobs.update_job(JobUpdate(job.id, LIVE, {"state": JobState.SUCCEEDED}), T0)


def test_a_queue_limit_caps_the_claim_and_frees_slots_as_jobs_end(store: Store) -> None:
    limit(store, Limit(QUEUE, "limited", 2))
    add(store, *(new_job(queue="limited") for _ in range(5)), new_job(), new_job())
    first = claim(store)
    assert sorted(job.queue for job in first) == ["default", "default", "limited", "limited"]
    assert claim(store) == []
    finish(store, [job for job in first if job.queue == "limited"][:1])
    assert [job.queue for job in claim(store)] == ["limited"]
    assert claim(store) == []


def test_a_limit_stored_after_claims_without_limits_holds_at_once(store: Store) -> None:
    """A claim learns of limits from its own claimable rows while the last one found
    none: a limit stored meanwhile still caps the next claim (and the ones after)."""
    add(store, new_job())
    assert len(claim(store)) == 1  # no limits stored: the store now expects none
    add(store, *(new_job(queue="limited") for _ in range(4)))
    limit(store, Limit(QUEUE, "limited", 1))
    assert [job.queue for job in claim(store)] == ["limited"]
    assert claim(store) == []
    assert claim(store) == []


def test_a_paused_job_holds_its_slot(store: Store) -> None:
    limit(store, Limit(QUEUE, "limited", 1))
    add(store, new_job(queue="limited"), new_job(queue="limited"))
    [running] = claim(store)
    store.jobs.update_job(JobUpdate(running.id, LIVE, {"state": JobState.PAUSED}), T0)
    assert claim(store) == []
    finish(store, [running])
    assert len(claim(store)) == 1


def test_a_type_limit_holds_across_queues(store: Store) -> None:
    limit(store, Limit(TYPE, "export", 3))
    add(store, *(new_job("export", queue=q) for q in ("a", "b") for _ in range(3)))
    add(store, new_job("echo", queue="a"))
    claimed = claim(store)
    assert Counter(job.type for job in claimed) == {"export": 3, "echo": 1}
    assert claim(store, queues=["b"]) == []


def test_both_limits_apply_to_a_job(store: Store) -> None:
    limit(store, Limit(QUEUE, "q", 3), Limit(TYPE, "export", 1))
    add(store, *(new_job("export", queue="q") for _ in range(3)), new_job("echo", queue="q"))
    assert Counter(job.type for job in claim(store)) == {"export": 1, "echo": 1}


def test_priorities_order_the_claim_within_a_limited_queue(store: Store) -> None:
    limit(store, Limit(QUEUE, "limited", 2))
    low, high, mid, high2 = add(
        store, *(new_job(queue="limited", priority=p) for p in (0, 9, 5, 9))
    )
    assert [job.id for job in claim(store)] == [high.id, high2.id]
    finish(store, [high, high2])
    assert [job.id for job in claim(store)] == [mid.id, low.id]


def test_a_full_scope_leaves_the_others_to_be_claimed(store: Store) -> None:
    limit(store, Limit(QUEUE, "limited", 1), Limit(TYPE, "export", 2))
    add(store, *(new_job(queue="limited", priority=9) for _ in range(60)))
    add(store, *(new_job("export") for _ in range(3)), new_job())
    claimed = claim(store) + claim(store)  # the second sees the full queue at once
    assert Counter((job.queue, job.type) for job in claimed) == {
        ("limited", "echo"): 1,
        ("default", "export"): 2,
        ("default", "echo"): 1,
    }


def test_limits_are_synced_from_the_configuration_and_set_for_stored_types(store: Store) -> None:
    assert store.limits.sync_limits([Limit(QUEUE, "q", 2), Limit(TYPE, "a", 1)], set(), T0)
    assert not store.limits.sync_limits([Limit(QUEUE, "q", 2), Limit(TYPE, "a", 1)], set(), T0)
    store.limits.set_limit((TYPE, "stored"), 4, T0)
    store.limits.set_limit((TYPE, "shadowed"), 5, T0)
    # The file drops q's limit and defines the type "shadowed" without one.
    store.limits.sync_limits([Limit(TYPE, "a", 3)], {(TYPE, "a"), (TYPE, "shadowed")}, T0)
    assert store.limits.read() == {(TYPE, "a"): 3, (TYPE, "stored"): 4}
    store.limits.set_limit((TYPE, "stored"), None, T0)
    assert store.limits.read() == {(TYPE, "a"): 3}


def test_tags_route_jobs_to_workers_that_have_them_all(store: Store) -> None:
    plain, gpu, big_gpu = add(
        store, new_job(), new_job(tags=("gpu",)), new_job(tags=("gpu", "big"))
    )
    assert [job.id for job in claim(store, worker="untagged")] == [plain.id]
    assert claim(store, worker="linux", tags=("linux",)) == []
    assert [job.id for job in claim(store, limit=1, worker="g", tags=("gpu", "linux"))] == [gpu.id]
    assert claim(store, worker="g", tags=("gpu", "linux")) == []
    claimed = claim(store, worker="all", tags=("linux", "gpu", "big"))
    assert [(job.id, job.route) for job in claimed] == [(big_gpu.id, "big,gpu")]


def test_routing_and_limits_go_together(store: Store) -> None:
    limit(store, Limit(QUEUE, "limited", 1))
    tagged, plain = add(store, new_job(queue="limited", tags=("gpu",)), new_job(queue="limited"))
    assert [job.id for job in claim(store, worker="untagged")] == [plain.id]
    assert claim(store, worker="g", tags=("gpu",)) == []  # the queue's only slot is taken
    finish(store, [plain])
    assert [job.id for job in claim(store, worker="g", tags=("gpu",))] == [tagged.id]


@pytest.fixture
def claimers(database_url: str) -> Iterator[list[Store]]:
    stores = [Store(database_url) for _ in range(4)]
    yield stores
    for store in stores:
        store.close()


def test_racing_claimers_never_exceed_a_limit(claimers: list[Store]) -> None:
    """Every round, four claimers start at once; the queue and the type stay within bounds."""
    first = claimers[0]
    limit(first, Limit(QUEUE, "limited", 2), Limit(TYPE, "export", 3))
    jobs = add(first, *(new_job(queue="limited") for _ in range(20)))
    jobs += add(first, *(new_job("export", queue=f"q{i % 3}") for i in range(30)))
    jobs += add(first, *(new_job() for _ in range(12)))
    start = threading.Barrier(len(claimers))
    claimed: Counter[int] = Counter()
    for _ in range(6):

        def race(index: int) -> list[Job]:
            start.wait(timeout=30)
            return claim(claimers[index], limit=3, worker=f"w{index}")

        batch = [job for jobs in in_threads(len(claimers), race) for job in jobs]
        claimed.update(job.id for job in batch)
        live = [job for job in first.jobs.jobs_by_id([job.id for job in jobs]) if job.state in LIVE]
        assert sum(job.queue == "limited" for job in live) <= 2
        assert sum(job.type == "export" for job in live) <= 3
        assert sum(job.queue == "limited" for job in batch) == 2  # the slots were free: filled
        finish(first, live)
    assert max(claimed.values()) == 1  # and no job was handed out twice


def test_a_stored_job_type_keeps_its_limit_with_the_others(store: Store) -> None:
    catalog = Catalog(store, {})
    catalog.put("nightly", {"command": ["true"], "max_running": 2}, T0)
    assert store.limits.read() == {(TYPE, "nightly"): 2}
    catalog.put("nightly", {"command": ["true"]}, T0)
    assert store.limits.read() == {}
    catalog.put("nightly", {"command": ["true"], "max_running": 1}, T0)
    catalog.delete("nightly")
    assert store.limits.read() == {}


COUNT_HELD = "SELECT jobs.queue, jobs.type, count(*) AS count_1 FROM jobs"


def careful_claims(store: Store) -> list[str]:
    """The statements of the claims that ``store`` makes the limit-aware way from now
    on: each counts the jobs holding slots first (``slots.lock_claimable``)."""
    counts: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def count(*args: Any) -> None:
        if " ".join(args[2].split()).startswith(COUNT_HELD):
            counts.append(args[2])

    return counts


@pytest.mark.sql_only("counts the statements a claim sends")
def test_limits_of_other_scopes_cost_a_claim_nothing(store: Store) -> None:
    """A claim that meets no job of a limited scope takes the jobs as without limits.
    One that meets one takes the limit-aware path, and so does the claim after it;
    once such a claim met none, claims go the short way again, also while a limited
    scope is full (with none of its jobs waiting)."""
    limit(store, Limit(QUEUE, "limited", 1), Limit(TYPE, "capped", 1))
    add(store, *(new_job() for _ in range(4)))
    claim(store, limit=1)  # a store's first claim knows nothing: it goes the long way
    counts = careful_claims(store)

    def taken(limit: int) -> tuple[list[str], bool]:
        """The queue:type of each job a claim took (then ended), and whether it went
        the long way."""
        before = len(counts)
        jobs = claim(store, limit=limit)
        finish(store, jobs)
        return [f"{job.queue}:{job.type}" for job in jobs], len(counts) > before

    assert taken(2) == (["default:echo"] * 2, False)  # the limits are others'
    add(store, new_job(queue="limited", priority=5), new_job(queue="limited", priority=5))
    assert taken(2) == (["limited:echo", "default:echo"], True)  # the limit holds
    assert taken(2) == (["limited:echo"], True)  # at once, as the last claim met it
    add(store, *(new_job() for _ in range(4)))
    assert taken(1) == (["default:echo"], True)  # at once: it learns none is met now
    assert taken(1) == (["default:echo"], False)  # the short way again
    add(store, new_job(queue="limited", priority=5))
    assert [job.queue for job in claim(store, limit=1)] == ["limited"]  # it goes on: full
    add(store, new_job(type_="capped", priority=5))
    assert taken(1) == (["default:capped"], True)  # a type's limit is met as a queue's
    assert taken(1) == (["default:echo"], True)
    assert taken(1) == (["default:echo"], False)  # the full queue has none waiting


@pytest.mark.postgres
def test_a_claim_waiting_for_a_scopes_turn_holds_no_job_of_it(servers: Servers) -> None:
    """PostgreSQL: a claim that met limited jobs kept them locked while it waited for the
    scope's lock, so the claimer ahead of it skipped them and started younger jobs of the
    scope in their place (or less urgent ones)."""
    url = servers.migrated_url("postgres")
    ahead, behind = Store(url), Store(url)
    try:
        limit(ahead, Limit(QUEUE, "lim", 2))
        add(ahead, new_job())
        assert len(claim(behind, limit=1)) == 1  # it met no limited job: it locks first
        first = add(ahead, *(new_job(queue="lim") for _ in range(4)))
        with ahead.engine.connect() as conn:
            turn = conn.begin()
            conn.execute(  # the claimer ahead holds the scope's turn
                select(limits.c.name).where(limits.c.name == "lim").with_for_update()
            )
            waiting = threading.Thread(target=claim, args=(behind,), kwargs={"limit": 2})
            waiting.start()
            wait_for(lambda: _waits_for_a_lock(ahead), 30, what="the claim to wait its turn")
            head = conn.execute(
                select(jobs.c.id)
                .where(jobs.c.queue == "lim", jobs.c.state == JobState.QUEUED.value)
                .order_by(jobs.c.priority.desc(), jobs.c.id)
                .limit(2)
                .with_for_update(skip_locked=True)
            ).scalars()
            assert list(head) == [job.id for job in first[:2]]
            turn.rollback()
        waiting.join(30)
        assert not waiting.is_alive()
    finally:
        ahead.close()
        behind.close()


def _waits_for_a_lock(store: Store) -> bool:
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    with store.engine.connect() as conn:
        return bool(conn.exec_driver_sql(query).scalar())
