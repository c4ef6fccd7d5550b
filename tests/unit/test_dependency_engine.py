"""The dependency engine on the in-memory store: conditions, blocking, sweeps, reopening."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from jobyard.dependencies import Dependencies
from jobyard.events.records import JobStateRecord
from jobyard.models import Condition, Dependency, JobSpec, JobUpdate, NewJob
from jobyard.states import JobState
from jobyard.store.memory import MemoryStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)
S = JobState


class Graph:
    """Jobs on a memory store, ended by hand, settled by the engine."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.wakes = 0
        self.deps = Dependencies(self.store, wake=self._wake, clock=lambda: NOW)

    def _wake(self) -> None:
        self.wakes += 1

    def add(self, *upstream: tuple[int, Condition], state: S = S.QUEUED, **changes: object) -> int:
        depends_on = tuple(Dependency(job_id, condition) for job_id, condition in upstream)
        new = NewJob("t", {}, JobSpec(argv=["true"]), "default", 0, state, depends_on=depends_on)
        [(job, _)] = self.store.jobs.add_jobs([dataclasses.replace(new, **changes)], NOW)
        return job.id

    def wait(self, *upstream: int, condition: Condition = Condition.SUCCEEDED) -> int:
        return self.add(*((job_id, condition) for job_id in upstream), state=S.WAITING)

    def end(self, job_id: int, state: S, *, settle: bool = True) -> None:
        update = JobUpdate(job_id, frozenset(JobState), {"state": state, "finished_at": NOW})
        assert self.store.jobs.update_job(update, NOW) is not None
        if settle:
            self.deps.settle([job_id])

    def states(self, *job_ids: int) -> list[S]:
        found = self.store.jobs.job_states(job_ids)
        return [found[job_id] for job_id in job_ids]


@pytest.fixture
def g() -> Graph:
    return Graph()


@pytest.mark.parametrize(
    ("condition", "ended", "expected"),
    [
        (Condition.SUCCEEDED, S.SUCCEEDED, S.QUEUED),
        (Condition.SUCCEEDED, S.FAILED, S.UPSTREAM_FAILED),
        (Condition.SUCCEEDED, S.KILLED, S.UPSTREAM_FAILED),
        (Condition.FAILED, S.FAILED, S.QUEUED),
        (Condition.FAILED, S.KILLED, S.QUEUED),
        (Condition.FAILED, S.SUCCEEDED, S.UPSTREAM_FAILED),
        (Condition.FINISHED, S.SUCCEEDED, S.QUEUED),
        (Condition.FINISHED, S.FAILED, S.QUEUED),
    ],
)
def test_each_condition_is_met_or_impossible(
    g: Graph, condition: Condition, ended: S, expected: S
) -> None:
    upstream = g.add()
    waiting = g.wait(upstream, condition=condition)
    g.end(upstream, ended)
    assert g.states(waiting) == [expected]
    events = g.store.jobs.job_events(waiting)
    assert isinstance(events[-1].record, JobStateRecord)
    assert events[-1].record.state is expected


def test_a_job_waits_for_every_upstream(g: Graph) -> None:
    a, b = g.add(), g.add()
    waiting = g.wait(a, b)
    g.end(a, S.SUCCEEDED)
    assert g.states(waiting) == [S.WAITING]
    g.end(b, S.SUCCEEDED)
    assert g.states(waiting) == [S.QUEUED]
    assert g.wakes == 1


def test_a_ready_job_with_a_future_time_is_scheduled(g: Graph) -> None:
    upstream = g.add()
    later = g.add((upstream, Condition.SUCCEEDED), state=S.WAITING, run_at=NOW + timedelta(hours=1))
    g.end(upstream, S.SUCCEEDED)
    assert g.states(later) == [S.SCHEDULED]


def test_a_failure_blocks_downstream_transitively(g: Graph) -> None:
    root = g.add()
    middle = g.wait(root)
    leaf = g.wait(middle)
    either = g.wait(middle, condition=Condition.FAILED)
    g.end(root, S.FAILED)
    assert g.states(middle, leaf, either) == [S.UPSTREAM_FAILED, S.UPSTREAM_FAILED, S.QUEUED]
    error = g.store.jobs.get_job(leaf).error  # type: ignore[union-attr]
    assert error == f"dependency {middle} ended upstream_failed"


def test_a_held_job_is_not_started_nor_blocked_by_a_settle(g: Graph) -> None:
    ok, bad = g.add(), g.add()
    held_ok = g.add((ok, Condition.SUCCEEDED), state=S.HELD)
    held_bad = g.add((bad, Condition.SUCCEEDED), state=S.HELD)
    g.end(ok, S.SUCCEEDED)
    g.end(bad, S.FAILED)
    assert g.states(held_ok, held_bad) == [S.HELD, S.HELD]
    assert g.store.jobs.get_job(held_ok).deps_pending == 0  # type: ignore[union-attr]


def test_settling_twice_counts_an_edge_once(g: Graph) -> None:
    a, b = g.add(), g.add()
    waiting = g.wait(a, b)
    g.end(a, S.SUCCEEDED)
    g.deps.settle([a, a])
    assert g.store.jobs.get_job(waiting).deps_pending == 1  # type: ignore[union-attr]


def test_a_sweep_finishes_what_a_dead_process_left(g: Graph) -> None:
    upstream = g.add()
    waiting = g.wait(upstream)
    g.end(upstream, S.SUCCEEDED, settle=False)
    assert g.store.deps.unsettled_upstreams() == [upstream]
    g.deps.sweep()
    assert g.states(waiting) == [S.QUEUED]
    assert g.store.deps.unsettled_upstreams() == []


def test_a_removed_upstream_blocks_its_dependents(g: Graph) -> None:
    upstream = g.add()
    waiting = g.wait(upstream)
    assert g.store.jobs.delete_job(upstream, frozenset(JobState))
    g.deps.settle([upstream])
    assert g.states(waiting) == [S.UPSTREAM_FAILED]


def test_a_restart_reopens_what_the_failure_blocked(g: Graph) -> None:
    root = g.add()
    middle = g.wait(root)
    leaf = g.wait(middle)
    g.end(root, S.FAILED)
    rerun = g.add()
    g.deps.reopen(root, rerun)
    assert g.states(middle, leaf) == [S.WAITING, S.WAITING]
    assert [d.upstream for d in g.store.deps.dependencies([middle])[middle]] == [rerun]
    g.end(rerun, S.SUCCEEDED)
    assert g.states(middle, leaf) == [S.QUEUED, S.WAITING]


def test_a_restart_leaves_blocked_a_job_with_another_failed_upstream(g: Graph) -> None:
    first, second = g.add(), g.add()
    waiting = g.wait(first, second)
    g.end(first, S.FAILED)
    g.end(second, S.FAILED)
    rerun = g.add()
    g.deps.reopen(first, rerun)
    assert g.states(waiting) == [S.UPSTREAM_FAILED]


@pytest.mark.parametrize(
    ("ended", "expected"), [(S.SUCCEEDED, S.QUEUED), (S.FAILED, S.UPSTREAM_FAILED)]
)
def test_a_restart_that_ends_while_it_reopens_its_dependents_settles_them(
    g: Graph, monkeypatch: pytest.MonkeyPatch, ended: S, expected: S
) -> None:
    """The restarted job ended (its end settled, finding nothing waiting for it yet)
    between the reopening's look at it (live) and the reopening itself: its dependent
    waited for a job that had ended, for ever."""
    root = g.add()
    middle = g.wait(root)
    g.end(root, S.FAILED)
    rerun = g.add()
    read = g.store.deps.dependencies

    def ends_meanwhile(job_ids: list[int]) -> object:
        found = read(job_ids)  # the restart read live …
        g.end(rerun, ended)  # … ends, and its own settle sees no job waiting on it yet
        return found

    monkeypatch.setattr(g.store.deps, "dependencies", ends_meanwhile)
    g.deps.reopen(root, rerun)
    assert g.states(middle) == [expected]


def test_a_sweep_tells_which_jobs_it_blocked(g: Graph) -> None:
    upstream = g.add()
    middle = g.wait(upstream)
    leaf = g.wait(middle)
    g.end(upstream, S.FAILED, settle=False)
    assert g.deps.sweep() == [middle, leaf]  # their workflow runs are looked at with them
    assert g.states(middle, leaf) == [S.UPSTREAM_FAILED, S.UPSTREAM_FAILED]
    assert g.deps.sweep() == []
