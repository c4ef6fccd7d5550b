"""A stopped workflow run on every store: it ends once none of its nodes is live, so
retention removes it like any ended run; resuming it runs again what the stop killed
and leaves what a failure blocked as it was.

The run's parts are wired as a server wires them (:class:`jobyard.node.Node`): a node
that ends settles its dependents, then its run looks at itself.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from alembic import command

from jobyard.api.streams import run_messages
from jobyard.dependencies import Dependencies
from jobyard.errors import Conflict, Invalid
from jobyard.events.hub import Hub
from jobyard.events.records import JobTerminated, WorkflowRunFinished
from jobyard.jobtypes.catalog import Catalog
from jobyard.jobtypes.spec import JobType, parse_job_type
from jobyard.manager import JobManager
from jobyard.models import Job, JobUpdate, NodeJob, RunState, WorkflowRun
from jobyard.states import JobState
from jobyard.store import Store
from jobyard.store.migrate import alembic_config
from jobyard.workflows.parse import parse_workflows
from jobyard.workflows.runs import Runs
from tests.harness import Sse, read_sse
from tests.stores import T0, claim

LATER = T0 + timedelta(days=1)  # retention's cutoff: what ended at T0 is older
TYPES = {"step": parse_job_type("step", {"command": ["true"]})}
WORKFLOWS = {
    "pair": {"nodes": {"a": {"type": "step"}, "b": {"type": "step", "depends_on": ["a"]}}},
    "twins": {"nodes": {"quick": {"type": "step"}, "stubborn": {"type": "step"}}},
    "forked": {  # a branch that fails, and one that is still running when the run stops
        "nodes": {
            "bad": {"type": "step"},
            "after_bad": {"type": "step", "depends_on": ["bad"]},
            "last": {"type": "step", "depends_on": ["after_bad"]},
            "long": {"type": "step"},
            "after_long": {"type": "step", "depends_on": ["long"]},
        }
    },
}


class Wired:
    """Runs over ``store`` with a fixed clock, and a node's end handled as a server does."""

    def __init__(
        self,
        store: Store,
        types: dict[str, JobType] = TYPES,
        workflows: dict[str, Any] = WORKFLOWS,
    ) -> None:
        self.store = store
        self.deps = Dependencies(store, clock=lambda: T0)
        self.manager = JobManager(
            store,
            Catalog(store, types),
            self.deps,
            clock=lambda: T0,
            on_terminal=self.ended,
            on_restart=lambda job: self.runs.job_restarted(job),
        )
        self.runs = Runs(self.manager, parse_workflows(workflows, types), clock=lambda: T0)

    def ended(self, job_id: int) -> None:
        self.deps.settle([job_id])
        self.runs.jobs_ended(self.store.jobs.jobs_by_id([job_id]))

    def end(self, job: Job, state: JobState) -> None:
        """The worker stored the end of ``job`` (claimed before)."""
        values: dict[str, Any] = {"state": state, "finished_at": T0}
        update = JobUpdate(job.id, frozenset({JobState.RUNNING}), values, None)
        assert self.store.jobs.update_job(update, T0) is not None
        self.ended(job.id)

    def kill(self, job: Job) -> None:
        """The worker stored the kill of ``job`` (claimed before), with its end's event."""
        values: dict[str, Any] = {"state": JobState.KILLED, "finished_at": T0}
        told = JobTerminated(at=T0, state=JobState.KILLED, reason="killed")
        update = JobUpdate(job.id, frozenset({JobState.RUNNING}), values, told)
        assert self.store.jobs.update_job(update, T0) is not None
        self.ended(job.id)

    def run(self, run_id: int) -> tuple[WorkflowRun, dict[str, Job]]:
        return self.runs.get(run_id)


def started(wired: Wired, workflow: str) -> tuple[int, dict[str, Job]]:
    """A run of ``workflow`` whose roots a worker claimed."""
    run, _ = wired.runs.start(workflow)
    claim(wired.store)
    return run.id, wired.run(run.id)[1]


def test_a_stopped_run_ends_with_its_last_node_and_retention_removes_it(store: Store) -> None:
    wired = Wired(store)
    run_id, nodes = started(wired, "pair")
    stopped, jobs = wired.runs.stop(run_id)
    assert stopped.state is RunState.STOPPED
    assert jobs["b"].state is JobState.KILLED  # cancelled at once
    assert jobs["a"].control is not None  # running: its worker is asked to kill it
    assert stopped.finished_at is None  # a node of it is still live
    wired.end(nodes["a"], JobState.KILLED)
    ended = wired.run(run_id)[0]
    assert (ended.state, ended.finished_at) == (RunState.STOPPED, T0)
    assert store.retention.prunable("runs", LATER) == 0  # its jobs first
    while store.retention.prune_jobs(LATER, 100, LATER).more:
        pass
    assert store.retention.prune_runs(LATER, 100, LATER).rows == 1
    assert store.runs.get_run(run_id) is None


def test_a_run_stopped_with_no_node_live_ends_at_once(store: Store) -> None:
    wired = Wired(store)
    run, _ = wired.runs.start("pair")  # nothing claimed: every node is cancelled at once
    stopped, jobs = wired.runs.stop(run.id)
    assert {job.state for job in jobs.values()} == {JobState.KILLED}
    assert (stopped.state, stopped.finished_at) == (RunState.STOPPED, T0)


def test_a_retry_the_file_refuses_leaves_the_run_as_it_was(store: Store) -> None:
    """The failed node's type gone from the file: the retry's 422 reopened the run with
    nothing to run, ``running`` for good (a schedule of it skipped every fire after)."""
    wired = Wired(store)
    run_id, nodes = started(wired, "pair")
    wired.end(nodes["a"], JobState.FAILED)
    failed = wired.run(run_id)[0]
    assert failed.state is RunState.FAILED
    changed = Wired(store, types={}, workflows={})  # the server restarted with a new file
    with pytest.raises(Invalid, match="unknown job type 'step'"):
        changed.runs.retry_failed(run_id)
    after, jobs = changed.run(run_id)
    assert after == failed
    assert [job.id for job in jobs.values()] == [job.id for job in nodes.values()]


def test_a_resume_the_file_refuses_leaves_the_stopped_run_as_it_was(store: Store) -> None:
    wired = Wired(store)
    run_id, nodes = started(wired, "pair")
    wired.runs.stop(run_id)
    wired.end(nodes["a"], JobState.KILLED)
    stopped = wired.run(run_id)[0]
    assert (stopped.state, stopped.finished_at) == (RunState.STOPPED, T0)
    changed = Wired(store, types={}, workflows={})
    with pytest.raises(Invalid, match="unknown job type 'step'"):
        changed.runs.resume(run_id)
    assert changed.run(run_id)[0] == stopped


def test_a_stopped_run_whose_jobs_retention_removed_does_not_resume(store: Store) -> None:
    """Its nodes' jobs pruned (``jobs`` kept for less time than ``runs``), a resume found no
    node at all, reopened the run and judged it: every node of none had succeeded, so it
    was ``succeeded``, though it had been stopped and nothing ran."""
    wired = Wired(store)
    run_id, nodes = started(wired, "pair")
    wired.runs.stop(run_id)
    wired.end(nodes["a"], JobState.KILLED)
    stopped = wired.run(run_id)[0]
    while store.retention.prune_jobs(LATER, 100, LATER).more:
        pass
    assert store.runs.node_jobs(run_id) == {}
    with pytest.raises(Conflict, match="retention removed their jobs"):
        wired.runs.resume(run_id)
    assert store.runs.get_run(run_id) == stopped


def test_a_run_stopped_with_every_node_ended_has_ended(store: Store) -> None:
    """Running with nothing live (as the refused retry above left a run): nothing killed
    refreshed the stopped run, so it never ended and retention kept it."""
    wired = Wired(store)
    run_id, nodes = started(wired, "pair")
    wired.end(nodes["a"], JobState.FAILED)
    reopened = {"state": RunState.RUNNING, "finished_at": None}
    assert store.runs.update_run(run_id, [RunState.FAILED], reopened, T0) is not None
    stopped, _ = wired.runs.stop(run_id)
    assert (stopped.state, stopped.finished_at) == (RunState.STOPPED, T0)


def test_a_runs_view_is_each_nodes_newest_job_in_a_few_columns(store: Store) -> None:
    """What the API shows of a run (and ``runs --wait`` polls) is read without the jobs'
    whole rows, and says what the jobs say: a restarted node shows its newest job."""
    wired = Wired(store)
    run, _ = wired.runs.start("pair")
    wired.runs.stop(run.id)
    again = wired.manager.restart(wired.run(run.id)[1]["a"].id)
    viewed, nodes = wired.runs.view(run.id)
    stored, latest = wired.run(run.id)
    assert viewed == stored
    assert nodes == {name: NodeJob.of(job) for name, job in latest.items()}
    assert (nodes["a"].job_id, nodes["a"].state) == (again.id, JobState.QUEUED)
    assert nodes["a"].restarted_from is not None
    assert nodes["b"].state is JobState.KILLED


def test_a_run_reads_with_whether_a_node_is_live_until_its_newest_jobs_ended(
    store: Store,
) -> None:
    wired = Wired(store)
    assert store.runs.live_run(404) is None
    run, _ = wired.runs.start("pair")
    assert store.runs.live_run(run.id) == (store.runs.get_run(run.id), True)
    stopped, _ = wired.runs.stop(run.id)  # every node killed: none live
    assert store.runs.live_run(run.id) == (stopped, False)
    wired.manager.restart(wired.run(run.id)[1]["a"].id)  # the killed job's restart is queued
    found = store.runs.live_run(run.id)
    assert found is not None
    assert found[1] is True


def test_resuming_a_stopped_run_clears_its_end_until_it_ends_again(store: Store) -> None:
    wired = Wired(store)
    run, _ = wired.runs.start("pair")
    wired.runs.stop(run.id)
    resumed, jobs = wired.runs.resume(run.id)
    assert (resumed.state, resumed.finished_at) == (RunState.RUNNING, None)
    assert jobs["a"].state is JobState.QUEUED
    # A node of a stopped run restarted by hand is live: the run has not ended meanwhile.
    wired.runs.stop(run.id)
    assert wired.run(run.id)[0].finished_at == T0
    again = wired.manager.restart(wired.run(run.id)[1]["a"].id)
    assert wired.run(run.id)[0].finished_at is None
    [running] = claim(store)
    assert running.id == again.id
    wired.end(running, JobState.SUCCEEDED)
    assert wired.run(run.id)[0].finished_at == T0  # still stopped: b was cancelled


def test_stopped_runs_stored_before_the_fix_end_when_migrated(empty_database_url: str) -> None:
    """Revision 0017 gives a stopped run with no live node the end of its last job (or
    the time it was stopped, with no job left); a stopped run with a live node waits."""
    store = Store(empty_database_url)
    try:
        with store.engine.connect() as conn, conn.begin():
            command.upgrade(alembic_config(conn), "0016")
        wired = Wired(store)
        ended_at = T0 + timedelta(minutes=5)
        old, _ = wired.runs.start("pair")
        for job in store.runs.run_jobs(old.id):
            values = {"state": JobState.KILLED, "finished_at": ended_at}
            assert store.jobs.update_job(JobUpdate(job.id, frozenset({job.state}), values), T0)
        no_jobs, _ = store.runs.add_workflow_run("pair", {}, "api", [], [], T0)
        live, _ = wired.runs.start("pair")
        running, _ = wired.runs.start("pair")
        for run in (old, no_jobs, live):  # as a stop left them before: no finished_at
            values = {"state": RunState.STOPPED}
            assert store.runs.update_run(run.id, {RunState.RUNNING}, values, T0)
        # as the older resume left a node that a failure had blocked: over, never finished
        broken, _ = wired.runs.start("pair")
        blocked_at = T0 + timedelta(minutes=7)
        for job in store.runs.run_jobs(broken.id):
            values = {"state": JobState.UPSTREAM_FAILED}
            assert store.jobs.update_job(
                JobUpdate(job.id, frozenset({job.state}), values), blocked_at
            )
        store.migrate()
        ends = {run.id: wired.run(run.id)[0].finished_at for run in (old, no_jobs, live, running)}
        assert ends == {old.id: ended_at, no_jobs.id: T0, live.id: None, running.id: None}
        mended = store.runs.run_jobs(broken.id)
        assert {(job.finished_at, job.reason) for job in mended} == {
            (blocked_at, "upstream_failed")
        }
    finally:
        store.close()


def finishes(store: Store, run_id: int) -> list[WorkflowRunFinished]:
    """Every end of the run announced, whichever of its jobs it is stored with."""
    return [
        event.record
        for job in store.runs.run_jobs(run_id)
        for event in store.jobs.job_events(job.id)
        if isinstance(event.record, WorkflowRunFinished)
    ]


def test_resume_runs_again_what_the_stop_killed_and_leaves_what_a_failure_blocked(
    store: Store,
) -> None:
    wired = Wired(store)
    run_id, nodes = started(wired, "forked")  # bad and long run
    wired.end(nodes["bad"], JobState.FAILED)
    wired.runs.stop(run_id)
    wired.end(nodes["long"], JobState.KILLED)
    _, halted = wired.run(run_id)
    blocked = {name: halted[name] for name in ("after_bad", "last")}
    assert {job.state for job in blocked.values()} == {JobState.UPSTREAM_FAILED}
    told = {name: store.jobs.job_events(job.id) for name, job in blocked.items()}
    resumed, jobs = wired.runs.resume(run_id)
    assert resumed.state is RunState.RUNNING
    assert {name: job.id for name, job in jobs.items() if name in blocked} == {
        name: job.id for name, job in blocked.items()
    }  # neither made again nor blocked again: nothing new to tell
    assert {name: store.jobs.job_events(job.id) for name, job in blocked.items()} == told
    assert jobs["bad"].id == nodes["bad"].id  # retry-failed's part, once the run has ended
    assert jobs["long"].restarted_from == nodes["long"].id
    assert jobs["after_long"].restarted_from == halted["after_long"].id
    [long] = claim(store)
    wired.end(long, JobState.SUCCEEDED)
    [after_long] = claim(store)
    wired.end(after_long, JobState.SUCCEEDED)
    ended, jobs = wired.run(run_id)
    assert (ended.state, ended.finished_at) == (RunState.FAILED, T0)
    assert [f.failed_nodes for f in finishes(store, run_id)] == [("bad",)]
    retried, jobs = wired.runs.retry_failed(run_id)  # the failure is fixed: it all runs
    assert retried.state is RunState.RUNNING
    assert {jobs[name].state for name in ("bad", "after_bad", "last")} == {
        JobState.QUEUED,
        JobState.WAITING,
    }


def test_a_node_the_stop_cancelled_before_its_upstream_failed_ends_blocked_on_resume(
    store: Store,
) -> None:
    """a failed before the stop's kill reached it, b was cancelled first: resumed, b is
    blocked as the failure would have blocked it, and the run ends ``failed`` then."""
    wired = Wired(store)
    run_id, nodes = started(wired, "pair")
    wired.runs.stop(run_id)
    wired.end(nodes["a"], JobState.FAILED)
    ended, jobs = wired.runs.resume(run_id)
    assert (ended.state, ended.finished_at) == (RunState.FAILED, T0)
    b = jobs["b"]
    assert (b.state, b.reason, b.finished_at) == (JobState.UPSTREAM_FAILED, "upstream_failed", T0)
    assert b.error == f"dependency {nodes['a'].id} ended failed"
    assert [f.failed_nodes for f in finishes(store, run_id)] == [("a",)]
    assert not any(
        isinstance(event.record, JobTerminated) for event in store.jobs.job_events(b.id)
    )  # the failure of a is what is told, once
    while store.retention.prune_jobs(LATER, 100, LATER).more:
        pass
    assert store.runs.run_jobs(run_id) == []  # the blocked job ended too: retention takes it


class Served:
    """What a run's stream reads of a server's node: its store and its event hub."""

    def __init__(self, store: Store, hub: Hub) -> None:
        self.store, self.hub = store, hub


@pytest.mark.sql_only("a run's stream follows the stored event log")
def test_a_stopped_runs_stream_tells_each_death_before_its_close(store: Store) -> None:
    """The stream read the run when it met a node's death: its other node had died too,
    its death stored just after, so the stream closed without it (a node a kill ends at
    once may end after one killed through its grace, when its worker is slow)."""
    wired = Wired(store)
    run_id, nodes = started(wired, "twins")
    hub = Hub(store, poll_interval=0.01)
    hub.start()

    async def follow() -> list[bytes]:
        messages = run_messages(Served(store, hub), run_id, None, idle=30)  # type: ignore[arg-type]
        sent = [await anext(messages)]  # ": from now": the stream's place is taken

        async def rest() -> None:
            sent.extend([message async for message in messages])

        reading = asyncio.create_task(rest())
        async with asyncio.timeout(30):
            while not hub.subscribers:  # the stream read the running run and follows it
                await asyncio.sleep(0.01)
        # On the stream's loop: both deaths are stored before the stream meets either.
        wired.runs.stop(run_id)
        wired.kill(nodes["stubborn"])  # stored first (its worker was quicker) …
        wired.kill(nodes["quick"])  # … the last death just after
        async with asyncio.timeout(30):
            await reading
        return sent

    try:
        sent = asyncio.run(follow())
    finally:
        hub.stop()
    events: list[Sse] = list(read_sse(iter(b"".join(sent).decode().splitlines())))
    *told, close = events
    killed = [e.data["node"] for e in told if e.data.get("state") == "killed"]
    assert sorted(killed) == ["quick", "stubborn"]
    assert (close.event, close.data) == ("close", {"run_id": run_id, "state": "stopped"})
