"""The dependency engine on every backend, without processes: counts, fan-in, sweeps."""

from __future__ import annotations

from datetime import UTC, datetime

from jobyard.dependencies import Dependencies
from jobyard.events.records import JobTerminated
from jobyard.models import JobSpec, JobUpdate, NewJob
from jobyard.states import LIVE, JobState
from jobyard.store import Store

NOW = datetime(2026, 1, 1, tzinfo=UTC)


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
