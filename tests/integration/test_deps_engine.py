"""The dependency engine on every backend, without processes: counts, fan-in, sweeps."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from jobyard.dependencies import MET, Dependencies
from jobyard.events.records import JobStateChanged, JobTerminated
from jobyard.jobtypes.catalog import Catalog
from jobyard.jobtypes.spec import parse_job_type
from jobyard.manager import JobManager, Submission
from jobyard.models import Dependency, JobEnd, JobSpec, JobUpdate, NewJob
from jobyard.states import LIVE, JobState
from jobyard.store import Store
from jobyard.store.dependencies import CHUNK
from jobyard.store.protocol import ClaimOrder
from jobyard.store.tables import job_dependencies, jobs
from tests.databases import lock_waits
from tests.harness import wait_for

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TYPES = {"t": parse_job_type("t", {"command": ["true"]})}


def node(state: JobState) -> NewJob:
    return NewJob("t", {}, JobSpec(argv=["true"]), "default", 0, state)


def wide(store: Store, width: int) -> list[int]:
    """1 → ``width`` → 1, as a workflow run; returns the job ids in that order."""
    jobs = [node(JobState.QUEUED)] + [node(JobState.WAITING) for _ in range(width + 1)]
    edges = [(i, 0) for i in range(1, width + 1)] + [(width + 1, i) for i in range(1, width + 1)]
    _, stored = store.runs.add_workflow_run("wide", {}, "test", jobs, edges, NOW)
    return [job.id for job in stored]


def succeed(store: Store, job_id: int) -> None:
    values = {"state": JobState.SUCCEEDED, "finished_at": NOW}
    update = JobUpdate(
        job_id,
        frozenset({*LIVE, JobState.QUEUED}),
        values,
        JobTerminated(at=NOW, state=JobState.SUCCEEDED),
    )
    assert store.jobs.update_job(update, NOW) is not None


def states(store: Store, ids: list[int]) -> list[JobState]:
    found = store.jobs.job_states(ids)
    return [found[i] for i in ids]


def test_a_fan_in_is_ready_only_when_every_upstream_succeeded(store: Store) -> None:
    deps = Dependencies(store, clock=lambda: NOW)
    ids = wide(store, 50)
    root, middle, last = ids[0], ids[1:-1], ids[-1]
    assert store.jobs.get_job(last).deps_pending == 50  # type: ignore[union-attr]
    succeed(store, root)
    deps.settle([root])
    assert set(states(store, middle)) == {JobState.QUEUED}
    for job_id in middle[:-1]:
        succeed(store, job_id)
        deps.settle([job_id])
        deps.settle([job_id])  # settling twice counts an edge once
    assert states(store, [last]) == [JobState.WAITING]
    assert store.jobs.get_job(last).deps_pending == 1  # type: ignore[union-attr]
    succeed(store, middle[-1])
    deps.settle([middle[-1]])
    assert states(store, [last]) == [JobState.QUEUED]


def test_a_settle_of_more_upstreams_than_one_read_takes_counts_each_edge_once(
    store: Store,
) -> None:
    """The settle reads the edges of ``CHUNK`` upstream jobs at a time (and, on the server
    databases, locks their dependents in id order first)."""
    deps = Dependencies(store, clock=lambda: NOW)
    ids = wide(store, CHUNK + 20)
    root, middle, last = ids[0], ids[1:-1], ids[-1]
    succeed(store, root)
    deps.settle([root])
    for job_id in middle:
        succeed(store, job_id)
    deps.settle(middle)
    deps.settle(middle)  # settling again counts nothing more
    assert states(store, [last]) == [JobState.QUEUED]
    assert store.jobs.get_job(last).deps_pending == 0  # type: ignore[union-attr]


def test_a_sweep_finishes_an_interrupted_settle(store: Store) -> None:
    deps = Dependencies(store, clock=lambda: NOW)
    ids = wide(store, 3)
    succeed(store, ids[0])  # ...and the process died before settling
    deps.sweep()
    assert set(states(store, ids[1:4])) == {JobState.QUEUED}
    for job_id in ids[1:4]:
        succeed(store, job_id)
    deps.sweep()
    assert states(store, [ids[-1]]) == [JobState.QUEUED]


def test_a_failure_blocks_transitively_and_a_restart_reopens(store: Store) -> None:
    deps = Dependencies(store, clock=lambda: NOW)
    ids = wide(store, 2)
    failed = {"state": JobState.FAILED, "finished_at": NOW}
    store.jobs.update_job(JobUpdate(ids[0], frozenset({JobState.QUEUED}), failed), NOW)
    deps.settle([ids[0]])
    assert set(states(store, ids[1:])) == {JobState.UPSTREAM_FAILED}
    ((again, _),) = store.jobs.add_jobs([node(JobState.QUEUED)], NOW)
    deps.reopen(ids[0], again.id)
    assert set(states(store, ids[1:])) == {JobState.WAITING}
    succeed(store, again.id)
    deps.settle([again.id])
    assert set(states(store, ids[1:3])) == {JobState.QUEUED}


def test_a_reopened_job_counts_off_the_upstreams_that_ended_while_it_was_blocked(
    store: Store,
) -> None:
    deps = Dependencies(store, clock=lambda: NOW)
    root, broken, sibling, last = wide(store, 2)
    succeed(store, root)
    deps.settle([root])
    failed = {"state": JobState.FAILED, "finished_at": NOW}
    store.jobs.update_job(JobUpdate(broken, frozenset({JobState.QUEUED}), failed), NOW)
    deps.settle([broken])
    assert states(store, [last]) == [JobState.UPSTREAM_FAILED]
    succeed(store, sibling)  # while the fan-in is blocked: its edge is not counted then
    deps.settle([sibling])
    ((again, _),) = store.jobs.add_jobs([node(JobState.QUEUED)], NOW)
    deps.reopen(broken, again.id)
    assert states(store, [last]) == [JobState.WAITING]
    assert store.jobs.get_job(last).deps_pending == 1  # type: ignore[union-attr]
    succeed(store, again.id)
    deps.settle([again.id])
    assert states(store, [last]) == [JobState.QUEUED]


def state_events(store: Store, job_id: int) -> list[tuple[str, str | None]]:
    records = [event.record for event in store.jobs.job_events(job_id)]
    return [(type(r).__name__, getattr(r, "state", None)) for r in records]


def test_many_ends_settle_together_and_count_a_fan_in_at_once(store: Store) -> None:
    deps = Dependencies(store, clock=lambda: NOW)
    ids = wide(store, 30)
    root, middle, last = ids[0], ids[1:-1], ids[-1]
    succeed(store, root)
    deps.settle([root])
    assert set(states(store, middle)) == {JobState.QUEUED}
    assert state_events(store, middle[0])[-1] == ("JobStateChanged", JobState.QUEUED)
    for job_id in middle[:10]:
        succeed(store, job_id)
    deps.settle(middle[:10] + middle[:10])  # one call, each edge counted once
    assert store.jobs.get_job(last).deps_pending == 20  # type: ignore[union-attr]
    for job_id in middle[10:]:
        succeed(store, job_id)
    deps.settle(middle[10:])
    assert states(store, [last]) == [JobState.QUEUED]
    assert store.jobs.get_job(last).deps_pending == 0  # type: ignore[union-attr]
    assert state_events(store, last) == [
        ("JobCreated", JobState.WAITING),
        ("JobStateChanged", JobState.QUEUED),
    ]


def test_one_failure_among_many_ends_blocks_the_fan_in_once(store: Store) -> None:
    deps = Dependencies(store, clock=lambda: NOW)
    ids = wide(store, 4)
    root, middle, last = ids[0], ids[1:-1], ids[-1]
    succeed(store, root)
    deps.settle([root])
    failed = {"state": JobState.FAILED, "finished_at": NOW}
    assert store.jobs.update_job(JobUpdate(middle[1], frozenset({JobState.QUEUED}), failed), NOW)
    for job_id in middle[:1] + middle[2:]:
        succeed(store, job_id)
    deps.settle(middle)
    blocked = store.jobs.get_job(last)
    assert blocked is not None
    assert blocked.state is JobState.UPSTREAM_FAILED
    assert blocked.error == f"dependency {middle[1]} ended failed"
    assert state_events(store, last)[1:] == [("JobTerminated", JobState.UPSTREAM_FAILED)]


# -- settled in the end's transaction (the worker's loop) ---------------------------
def ended_by(store: Store, job_id: int, state: JobState = JobState.SUCCEEDED) -> JobEnd:
    """The end of ``job_id``'s first attempt on worker w1, which claimed it."""
    values = {"state": state, "finished_at": NOW}
    update = JobUpdate(
        job_id, frozenset({JobState.RUNNING}), values, JobTerminated(at=NOW, state=state)
    )
    return JobEnd(update, "w1", 1)


def order(limit: int) -> ClaimOrder:
    return ClaimOrder("w1", "host", None, limit, NOW + timedelta(minutes=1))


def test_an_end_settles_its_edges_and_claims_what_they_released_in_one_call(
    store: Store,
) -> None:
    ids = wide(store, 3)
    root, middle, last = ids[0], ids[1:-1], ids[-1]
    [claimed] = store.queue.claim_jobs("w1", "host", None, 1, NOW, NOW + timedelta(minutes=1)).jobs
    assert claimed.id == root
    ended, took = store.queue.end_and_claim([ended_by(store, root)], NOW, order(2), settle=MET)
    assert took is not None
    assert [job.id for job in took.jobs] == middle[:2]  # released, then claimed
    assert took.more is True
    assert states(store, middle) == [JobState.RUNNING, JobState.RUNNING, JobState.QUEUED]
    assert [e.job.id if e else None for e in ended] == [root]
    assert ended[0] is not None
    assert not ended[0].awaited  # its edges are settled: nothing is left to the caller
    assert store.jobs.get_job(last).deps_pending == 3  # type: ignore[union-attr]
    released = [
        e for e in store.jobs.job_events(middle[2]) if isinstance(e.record, JobStateChanged)
    ]
    assert [e.record.state for e in released] == [JobState.QUEUED]
    # A fan-in counts the end once, settled with it; settling again counts nothing.
    store.queue.end_and_claim([ended_by(store, middle[0])], NOW, order(0), settle=MET)
    assert store.jobs.get_job(last).deps_pending == 2  # type: ignore[union-attr]
    Dependencies(store, clock=lambda: NOW).settle([root, middle[0]])
    assert store.jobs.get_job(last).deps_pending == 2  # type: ignore[union-attr]
    assert states(store, middle) == [JobState.SUCCEEDED, JobState.RUNNING, JobState.QUEUED]


def test_an_edge_that_can_never_be_met_is_left_to_the_caller_to_block(store: Store) -> None:
    ids = wide(store, 2)
    root, middle = ids[0], ids[1:-1]
    store.queue.claim_jobs("w1", "host", None, 1, NOW, NOW + timedelta(minutes=1))
    failed = ended_by(store, root, JobState.FAILED)
    ended, took = store.queue.end_and_claim([failed], NOW, order(2), settle=MET)
    assert took is not None
    assert took.jobs == []
    assert ended[0] is not None
    assert ended[0].awaited  # its dependents wait to be blocked
    assert states(store, middle) == [JobState.WAITING, JobState.WAITING]
    Dependencies(store, clock=lambda: NOW).settle([root])
    assert states(store, middle) == [JobState.UPSTREAM_FAILED] * 2


def test_with_released_only_the_claim_is_made_only_for_what_the_ends_released(
    store: Store,
) -> None:
    [alone] = [job.id for job, _ in store.jobs.add_jobs([node(JobState.QUEUED)], NOW)]
    ids = wide(store, 1)
    store.queue.claim_jobs("w1", "host", None, 2, NOW, NOW + timedelta(minutes=1))
    [queued] = [job.id for job, _ in store.jobs.add_jobs([node(JobState.QUEUED)], NOW)]
    ended, took = store.queue.end_and_claim(
        [ended_by(store, alone)], NOW, order(1), settle=MET, released_only=True
    )
    assert took is None  # nothing released: no claim, though a job is queued
    assert ended[0] is not None
    assert states(store, [alone, queued]) == [JobState.SUCCEEDED, JobState.QUEUED]
    ended, took = store.queue.end_and_claim(
        [ended_by(store, ids[0])], NOW, order(1), settle=MET, released_only=True
    )
    assert took is not None
    assert [job.id for job in took.jobs] == [ids[1]]


def test_an_end_says_whether_its_workflow_run_kept_a_live_node_in_its_commit(
    store: Store,
) -> None:
    """``run_live``: a node whose edge the settle counted, or one the claim took, is live
    when the end commits; a job outside the run that waits for its node is not the run's."""
    root, first, second, last = wide(store, 2)
    after = NewJob("t", {}, JobSpec(argv=["true"]), "default", 0, JobState.WAITING)
    [(outside, _)] = store.jobs.add_jobs([replace(after, depends_on=(Dependency(last),))], NOW)
    store.queue.claim_jobs("w1", "host", None, 1, NOW, NOW + timedelta(minutes=1))

    def end(job_id: int, claim: int, settle: bool = True) -> tuple[bool, list[int]]:
        ended, took = store.queue.end_and_claim(
            [ended_by(store, job_id)], NOW, order(claim), settle=MET if settle else None
        )
        [(job, run_live)] = [(e.job.id, e.run_live) for e in ended if e is not None]
        assert job == job_id
        return run_live, [job.id for job in took.jobs] if took else []

    assert end(root, 0) == (True, [])  # it released both middle nodes
    assert store.queue.claim_jobs("w1", "host", None, 2, NOW, NOW).jobs != []
    assert end(first, 0) == (True, [])  # the last node still waits
    assert end(second, 1) == (True, [last])  # it released the last node, claimed
    # Nothing of the run is left: it released a job outside the run, and claimed it.
    assert end(last, 1) == (False, [outside.id])
    # Without settling, only the claim says so.
    [root, first, _, _] = wide(store, 2)
    store.queue.claim_jobs("w1", "host", None, 1, NOW, NOW + timedelta(minutes=1))
    assert end(root, 1, settle=False) == (False, [])
    Dependencies(store, clock=lambda: NOW).settle([root])
    store.queue.claim_jobs("w1", "host", None, 1, NOW, NOW + timedelta(minutes=1))
    assert end(first, 1, settle=False)[0] is True  # the claim took the other middle node


def test_an_end_in_the_commit_of_an_edge_never_met_does_not_say_its_run_goes_on(
    store: Store,
) -> None:
    """A fan-in whose upstreams end in one commit, one succeeded and one failed: its edge
    from the first is counted, but it is to be blocked, and the run may end with it."""
    root, first, second, last = wide(store, 2)
    store.queue.claim_jobs("w1", "host", None, 1, NOW, NOW + timedelta(minutes=1))
    store.queue.end_and_claim([ended_by(store, root)], NOW, order(2), settle=MET)
    ends = [ended_by(store, first), ended_by(store, second, JobState.FAILED)]
    ended, _ = store.queue.end_and_claim(ends, NOW, order(0), settle=MET)
    assert [(e.job.id, e.awaited, e.run_live) for e in ended if e is not None] == [
        (first, False, False),
        (second, True, False),  # its dependent waits to be blocked
    ]
    Dependencies(store, clock=lambda: NOW).settle([second])
    assert states(store, [last]) == [JobState.UPSTREAM_FAILED]


def test_a_dependent_stored_as_its_upstream_ends_is_settled_at_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upstream ends, and looks for what waits for it, between the submission's read of
    its state and the dependents' commit: the submission settles them, not the sweep."""
    manager = JobManager(store, Catalog(store, TYPES), clock=lambda: NOW)
    upstream, _ = manager.submit(Submission(type="t"))
    failing, _ = manager.submit(Submission(type="t"))
    store.queue.claim_jobs("w1", "host", None, 2, NOW, NOW + timedelta(minutes=1))
    add_jobs = store.jobs.add_jobs

    def ending_first(new: Any, now: datetime, **options: Any) -> Any:
        ends = [ended_by(store, upstream.id), ended_by(store, failing.id, JobState.FAILED)]
        ended, _ = store.queue.end_and_claim(ends, NOW, order(0), settle=MET)
        assert [e.awaited for e in ended if e is not None] == [False, False]  # none waits yet
        return add_jobs(new, now, **options)

    monkeypatch.setattr(store.jobs, "add_jobs", ending_first)
    submissions = [
        Submission(type="t", depends_on=(Dependency(upstream.id),)),
        Submission(type="t", depends_on=(Dependency(failing.id),)),
    ]
    (ready, _), (blocked, _) = manager.submit_many(submissions)
    assert (ready.state, blocked.state) == (JobState.QUEUED, JobState.UPSTREAM_FAILED)
    assert states(store, [ready.id, blocked.id]) == [JobState.QUEUED, JobState.UPSTREAM_FAILED]
    assert blocked.error == f"dependency {failing.id} ended failed"


def test_a_dependent_stored_while_its_upstreams_end_is_under_way_waits_for_it(
    store: Store,
) -> None:
    """A worker's end is under way (its row written, not committed) while a dependent is
    stored: the submission's second look waits for that end's commit, then settles."""
    if not isinstance(store, Store) or store.dialect == "sqlite":
        pytest.skip("a server database's row locks")
    manager = JobManager(store, Catalog(store, TYPES), clock=lambda: NOW)
    upstream, _ = manager.submit(Submission(type="t"))
    store.queue.claim_jobs("w1", "host", None, 1, NOW, NOW + timedelta(minutes=1))
    ending = store.engine.connect()
    transaction = ending.begin()
    done = update(jobs).where(jobs.c.id == upstream.id).values(state="succeeded")
    ending.execute(done)  # the end's row, locked until its commit

    def commit_once_waited_for() -> None:
        try:
            wait_for(
                lambda: lock_waits(store, "LOCK IN SHARE MODE"),
                timeout=30,
                what="the submission to wait for the end",
            )
        finally:
            transaction.commit()
            ending.close()

    committer = threading.Thread(target=commit_once_waited_for)
    committer.start()
    try:
        dependent, _ = manager.submit(Submission(type="t", depends_on=(Dependency(upstream.id),)))
    finally:
        committer.join()
    assert dependent.state is JobState.QUEUED
    assert states(store, [dependent.id]) == [JobState.QUEUED]


def test_two_settles_sharing_dependents_lock_them_in_id_order(store: Store) -> None:
    """Two settles of different upstream jobs meet the same two dependents, in opposite
    orders: the first through its first upstream's edge, the second through its
    second's. MariaDB locks a locking read's rows as it finds them, so each held one
    dependent and waited for the other, and the database aborted one settle (a worker
    retried it as if the database were out of reach)."""
    if not isinstance(store, Store) or store.dialect == "sqlite":
        pytest.skip("a server database's row locks")
    new = [node(JobState.QUEUED) for _ in range(4)] + [node(JobState.WAITING)] * 2
    # u1 → x, u2 → w, u3 → w, u4 → x (as (job, upstream) by position)
    edges = [(5, 0), (4, 1), (4, 2), (5, 3)]
    _, stored = store.runs.add_workflow_run("shared", {}, "test", new, edges, NOW)
    u1, u2, u3, u4, w, x = (job.id for job in stored)
    for upstream in (u1, u2, u3, u4):
        succeed(store, upstream)
    edge = (job_dependencies.c.job_id == w) & (job_dependencies.c.upstream_id == u3)
    with store.engine.connect() as other, ThreadPoolExecutor(2) as pool:
        # the first settle waits for the edge u3 → w, after what it may take before it
        other.execute(select(job_dependencies.c.job_id).where(edge).with_for_update())
        try:
            first = pool.submit(store.deps.settle_edges, [u1, u3], MET, NOW)
            wait_for(lambda: lock_waits(store, "FOR UPDATE"), what="the first settle's wait")
            second = pool.submit(store.deps.settle_edges, [u2, u4], MET, NOW)
            wait_for(
                lambda: second.done() or lock_waits(store, "FOR UPDATE") > 1,
                what="the second settle to end or wait",
            )
        finally:
            other.rollback()
        released = first.result(timeout=30).released + second.result(timeout=30).released
    assert sorted(released) == [w, x]
    assert states(store, [w, x]) == [JobState.QUEUED, JobState.QUEUED]
