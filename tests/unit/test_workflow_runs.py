"""Workflow runs on the in-memory store: nodes ended in a batch move the run once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from jobyard.dependencies import Dependencies
from jobyard.errors import Conflict
from jobyard.events.records import WorkflowRunFinished, WorkflowRunReopened
from jobyard.jobtypes.catalog import Catalog
from jobyard.jobtypes.spec import parse_job_type
from jobyard.manager import JobManager
from jobyard.models import Job, JobUpdate, RunState, WorkflowRun
from jobyard.states import JobState
from jobyard.store.memory import MemoryStore
from jobyard.workflows.dag import parse_workflows
from jobyard.workflows.runs import Runs

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
TYPES = {"step": parse_job_type("step", {"command": ["true"]})}
WIDE = {
    "first": {"type": "step"},
    **{f"m{i}": {"type": "step", "depends_on": ["first"]} for i in range(5)},
    "last": {"type": "step", "depends_on": [f"m{i}" for i in range(5)]},
}


# Five nodes, each with one of its own downstream: restarting one reopens that one.
PAIRS = {
    "first": {"type": "step"},
    **{f"m{i}": {"type": "step", "depends_on": ["first"]} for i in range(5)},
    **{f"n{i}": {"type": "step", "depends_on": [f"m{i}"]} for i in range(5)},
}


# A node with its own budget and one that waits for 13:00 (the run starts at 12:00 UTC).
KEPT = {
    "budget": {"type": "step", "sla": {"max_runtime": "1s", "on_breach": "kill"}},
    "later": {"type": "step", "at": "13:00"},
}


def runs_on(store: MemoryStore) -> tuple[Runs, Dependencies]:
    deps = Dependencies(store, clock=lambda: NOW)
    runs: Runs
    manager = JobManager(
        store,
        Catalog(store, TYPES),
        deps,
        on_restart=lambda job: runs.job_restarted(job),  # as the node wires them
        clock=lambda: NOW,
    )
    specs = {"wide": {"nodes": WIDE}, "kept": {"nodes": KEPT}, "pairs": {"nodes": PAIRS}}
    workflows = parse_workflows(specs, TYPES)
    runs = Runs(manager, workflows, clock=lambda: NOW)
    return runs, deps


def end(store: MemoryStore, jobs: list[Job], state: JobState) -> list[Job]:
    values = {"state": state, "finished_at": NOW}
    ended = [store.jobs.update_job(JobUpdate(j.id, frozenset(JobState), values), NOW) for j in jobs]
    return [job for job in ended if job is not None]


def run_events(store: MemoryStore, job_ids: list[int]) -> list[WorkflowRunFinished]:
    return [
        event.record
        for job_id in job_ids
        for event in store.jobs.job_events(job_id)
        if isinstance(event.record, WorkflowRunFinished)
    ]


def test_nodes_ended_together_end_the_run_once() -> None:
    store = MemoryStore()
    runs, deps = runs_on(store)
    run, nodes = runs.start("wide")
    first, middle = nodes["first"], [nodes[f"m{i}"] for i in range(5)]
    runs.jobs_ended(end(store, [first], JobState.SUCCEEDED))
    deps.settle([first.id])
    ended = end(store, middle, JobState.SUCCEEDED)
    deps.settle([job.id for job in ended])
    runs.jobs_ended(ended)
    assert runs.get(run.id)[0].state is RunState.RUNNING  # the last node is queued
    last = end(store, [nodes["last"]], JobState.FAILED)
    runs.jobs_ended(last + last)
    assert runs.get(run.id)[0].state is RunState.FAILED
    [finished] = run_events(store, [job.id for job in nodes.values()])
    assert finished.failed_nodes == ("last",)
    assert store.runs.node_jobs(run.id)["last"].state is JobState.FAILED


def test_a_node_run_again_keeps_its_budget_and_its_time() -> None:
    # A resumed node lost its own sla (its type's, or none, came back) and ran at once
    # though its ``at`` time had not come.
    store = MemoryStore()
    runs, _ = runs_on(store)
    run, nodes = runs.start("kept")
    assert nodes["later"].state is JobState.SCHEDULED
    runs.stop(run.id)
    _, again = runs.resume(run.id)
    new_budget, new_later = again["budget"], again["later"]
    assert new_budget.restarted_from == nodes["budget"].id
    assert new_later.restarted_from == nodes["later"].id
    assert new_budget.spec.sla == nodes["budget"].spec.sla is not None
    assert (new_later.state, new_later.run_at) == (JobState.SCHEDULED, nodes["later"].run_at)


def wide_run_ended_by_its_first_node(
    store: MemoryStore, state: JobState
) -> tuple[Runs, WorkflowRun, dict[str, Job]]:
    """A run of ``wide`` whose first node ended ``state``: the run has failed."""
    runs, deps = runs_on(store)
    run, nodes = runs.start("wide")
    ended = end(store, [nodes["first"]], state)
    deps.settle([job.id for job in ended])
    runs.jobs_ended(ended)
    assert runs.get(run.id)[0].state is RunState.FAILED
    return runs, run, nodes


def test_a_killed_node_is_named_among_those_that_failed_the_run() -> None:
    store = MemoryStore()
    runs, run, nodes = wide_run_ended_by_its_first_node(store, JobState.KILLED)
    [finished] = run_events(store, [job.id for job in nodes.values()])
    assert finished.failed_nodes == ("first",)
    # … and it is retried as a failed node is (409: "no node failed")
    _, jobs = runs.retry_failed(run.id)
    assert jobs["first"].restarted_from == nodes["first"].id


def test_a_failed_node_is_retried_after_its_workflow_changed_or_went() -> None:
    """Renamed in the file since the run (or the workflow removed), a failed node was
    not retried: the answer was 200, nothing ran, and the run's failure was told again."""
    store = MemoryStore()
    runs, run, nodes = wide_run_ended_by_its_first_node(store, JobState.FAILED)
    changed = Runs(runs.manager, {}, clock=lambda: NOW)  # the workflow is gone from the file
    retried, jobs = changed.retry_failed(run.id)
    assert retried.state is RunState.RUNNING
    assert jobs["first"].restarted_from == nodes["first"].id
    assert jobs["first"].state is JobState.QUEUED


def test_a_retried_node_that_fails_at_once_ends_the_run_after_its_reopening() -> None:
    """The node ran again and failed within milliseconds (a worker's end, settle and run
    refresh) before the retry had told the reopening: the run's second end came before
    its reopening, and a stream replayed from the start lost its place."""
    store = MemoryStore()
    runs, run, _ = wide_run_ended_by_its_first_node(store, JobState.FAILED)
    repoint = store.deps.repoint_dependencies

    def fails_meanwhile(old: int, new: int) -> list[int]:
        [failed] = end(store, store.jobs.jobs_by_id([new]), JobState.FAILED)
        runs.manager.deps.settle([failed.id])  # what the worker does with its end
        runs.jobs_ended([failed])
        return repoint(old, new)

    store.deps.repoint_dependencies = fails_meanwhile  # type: ignore[method-assign]
    retried, jobs = runs.retry_failed(run.id)
    assert retried.state is RunState.FAILED
    assert {jobs[f"m{i}"].state for i in range(5)} == {JobState.UPSTREAM_FAILED}
    ids = sorted(job.id for job in store.runs.run_jobs(run.id))
    told = [
        (type(event.record).__name__, getattr(event.record, "state", None))
        for event in sorted(
            (e for job_id in ids for e in store.jobs.job_events(job_id)), key=lambda e: e.id
        )
        if type(event.record).__name__.startswith("WorkflowRun")
    ]
    assert told == [
        ("WorkflowRunStarted", None),
        ("WorkflowRunFinished", RunState.FAILED),
        ("WorkflowRunReopened", RunState.RUNNING),
        ("WorkflowRunFinished", RunState.FAILED),
    ]


def pairs_run_failed_in_its_middle(
    store: MemoryStore,
) -> tuple[Runs, Dependencies, WorkflowRun, dict[str, Job]]:
    """A run of ``pairs`` whose five middle nodes failed: each blocked its own node."""
    runs, deps = runs_on(store)
    run, nodes = runs.start("pairs")
    ended = end(store, [nodes["first"]], JobState.SUCCEEDED)
    deps.settle([job.id for job in ended])
    ended = end(store, [nodes[f"m{i}"] for i in range(5)], JobState.FAILED)
    deps.settle([job.id for job in ended])
    runs.jobs_ended(ended)
    return runs, deps, run, nodes


def test_a_retry_of_many_nodes_that_fail_at_once_tells_one_reopening_and_one_end() -> None:
    """Each node was restarted on its own: one restarted reopened its downstream node and
    the run, then failed (a worker is fast) before the next was restarted, ending the run
    again, and so on: a retry of 200 failing nodes told 49 ends, each a notification."""
    store = MemoryStore()
    runs, deps, run, nodes = pairs_run_failed_in_its_middle(store)
    assert runs.get(run.id)[0].state is RunState.FAILED
    working = False

    def fast_worker() -> None:
        """Whatever of the run can run fails at once."""
        nonlocal working
        if working:
            return
        working = True
        try:
            queued = [j for j in store.runs.run_jobs(run.id) if j.state is JobState.QUEUED]
            for failed in end(store, queued, JobState.FAILED):
                deps.settle([failed.id])
                runs.jobs_ended([failed])
        finally:
            working = False

    def then_work(method: Callable[..., Any]) -> Callable[..., Any]:
        def changed(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            fast_worker()
            return result

        return changed

    # The worker runs a node once its restart is done (or once it is started).
    runs.job_restarted = then_work(runs.job_restarted)  # type: ignore[method-assign]
    runs.manager.act = then_work(runs.manager.act)  # type: ignore[method-assign]
    retried, _ = runs.retry_failed(run.id)
    assert retried.state is RunState.FAILED
    told = [
        type(event.record).__name__
        for event in sorted(
            (e for j in store.runs.run_jobs(run.id) for e in store.jobs.job_events(j.id)),
            key=lambda e: e.id,
        )
        if isinstance(event.record, WorkflowRunFinished | WorkflowRunReopened)
    ]
    assert told == ["WorkflowRunFinished", "WorkflowRunReopened", "WorkflowRunFinished"]
    latest = store.runs.node_jobs(run.id)
    assert {latest[f"m{i}"].state for i in range(5)} == {JobState.FAILED}
    assert all(latest[f"m{i}"].job_id != nodes[f"m{i}"].id for i in range(5))
    assert {latest[f"n{i}"].state for i in range(5)} == {JobState.UPSTREAM_FAILED}


def test_a_stopped_run_resumes_only_once_its_killed_nodes_have_ended() -> None:
    """Resumed while a killed node was still dying, the node was not run again (it was
    not killed yet), what waited for it was blocked by its death, and the run failed,
    telling so, for a node its own stop had killed."""
    store = MemoryStore()
    runs, deps = runs_on(store)
    run, nodes = runs.start("wide")
    running = JobUpdate(nodes["first"].id, frozenset(JobState), {"state": JobState.RUNNING})
    assert store.jobs.update_job(running, NOW) is not None
    runs.stop(run.id)  # the running node is asked to die; the rest are cancelled
    with pytest.raises(Conflict, match="still being stopped"):
        runs.resume(run.id)
    assert store.runs.node_jobs(run.id)["first"].job_id == nodes["first"].id  # nothing ran
    ended = end(store, [nodes["first"]], JobState.KILLED)
    deps.settle([job.id for job in ended])
    runs.jobs_ended(ended)
    resumed, jobs = runs.resume(run.id)
    assert resumed.state is RunState.RUNNING
    assert jobs["first"].restarted_from == nodes["first"].id
    assert jobs["first"].state is JobState.QUEUED


def test_a_retry_cut_short_by_a_database_error_starts_what_it_restarted() -> None:
    """The nodes restarted held were started only once all were: an error of the
    database in between (not one of jobyard's) left them held, and the run running."""
    store = MemoryStore()
    runs, _, run, _ = pairs_run_failed_in_its_middle(store)
    restart = runs.manager.restart
    calls = 0

    def fails_the_third(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("the database went away")
        return restart(*args, **kwargs)

    runs.manager.restart = fails_the_third  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="went away"):
        runs.retry_failed(run.id)
    latest = store.runs.node_jobs(run.id)
    restarted = [latest[f"m{i}"] for i in range(5) if latest[f"m{i}"].restarted_from]
    assert len(restarted) == 2
    assert {node.state for node in restarted} == {JobState.QUEUED}
