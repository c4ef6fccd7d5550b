"""Workflow runs: a workflow's nodes as jobs linked by dependencies.

Starting a run stores the run and one job per node in one transaction; every
edge of the DAG becomes a ``succeeded`` dependency, so the dependency engine
(:mod:`jobyard.dependencies`) starts each node once its upstream succeeded (and its
``at`` time has come), and blocks what is downstream of a failure. A run's
state follows from its nodes' latest jobs: ``running`` while any is not
terminal, then ``succeeded`` when all succeeded, else ``failed`` (or ``stopped``
when someone stopped it). A run has ended (``finished_at``) once none of its
nodes is live, a stopped one too, so that retention removes it in time.
Restarting a node of a run that ended makes it ``running`` again (announced as
``workflow_reopened``), and it ends anew when its jobs do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from jobyard.clock import utcnow
from jobyard.errors import Conflict, Invalid, JobyardError, NotFound
from jobyard.events.records import (
    Record,
    WorkflowRunFinished,
    WorkflowRunReopened,
    WorkflowRunStarted,
)
from jobyard.jobtypes.params import FieldError, summary
from jobyard.jobtypes.spec import ArgsInvalid
from jobyard.manager import JobManager
from jobyard.models import Job, NewJob, NodeJob, RunState, WorkflowRun
from jobyard.states import Event, JobState
from jobyard.workflows.dag import node_args, not_before, run_args_problems, topological_order
from jobyard.workflows.spec import NodeSpec, WorkflowSpec

log = logging.getLogger(__name__)

RunView = tuple[WorkflowRun, dict[str, Job]]
# The nodes that fail a run (a user's kill too: a stop's leaves the run stopped), and
# that retry-failed runs again.
RETRIED = frozenset({JobState.FAILED, JobState.KILLED})
_REFRESHES = 5  # looks at a run whose state changed under a refresh


class Runs:
    def __init__(
        self,
        manager: JobManager,
        workflows: Mapping[str, WorkflowSpec],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.manager = manager
        self.store = manager.store
        self.workflows = dict(workflows)
        self._clock = clock

    def workflow(self, name: str) -> WorkflowSpec:
        if name not in self.workflows:
            raise NotFound(f"no workflow named {name!r}")
        return self.workflows[name]

    # -- starting ----------------------------------------------------------
    def check_run_args(self, name: str, run_args: Mapping[str, Any]) -> None:
        """422 naming each run argument that no node's type declares (a typo, most likely)
        or that a node's type refuses, as the workflow's own ``args`` are checked when its
        file loads."""
        spec = self.workflow(name)
        problems = run_args_problems(spec, self.manager.catalog.require, run_args)
        errors: list[FieldError] = [
            {**problem, "field": f"args.{problem['field']}".rstrip("."), "location": "body"}
            for problem in problems
        ]
        if errors:
            detail = f"the arguments of a run of {name!r} are invalid"
            raise Invalid(summary(detail, errors), errors)

    def start(
        self, name: str, run_args: dict[str, Any] | None = None, trigger: str = "api"
    ) -> RunView:
        """Store a run and its node jobs; roots start at once, the rest wait for upstream."""
        now = self._clock()
        nodes, edges = self.graph(name, run_args or {}, now)
        run, stored = self.store.runs.add_workflow_run(
            name, run_args or {}, trigger, nodes, edges, now
        )
        return self.started(run, stored, now)

    def graph(
        self, name: str, run_args: dict[str, Any], now: datetime
    ) -> tuple[list[NewJob], list[tuple[int, int]]]:
        """A new run's node jobs in topological order, and its edges as (waiting, upstream)
        indexes into them: what :meth:`start` stores (as a schedule's fire does, with its
        claim)."""
        spec = self.workflow(name)
        order = topological_order(spec)
        index = {node: i for i, node in enumerate(order)}
        nodes = [self._node_job(spec, spec.nodes[node], run_args, now) for node in order]
        edges = [(index[node], index[up]) for node in order for up in spec.nodes[node].depends_on]
        return nodes, edges

    def started(self, run: WorkflowRun, stored: list[Job], now: datetime) -> RunView:
        """A run just stored, with its node jobs: announced, and its roots' workers woken."""
        started = WorkflowRunStarted(
            at=now, run_id=run.id, workflow=run.workflow, trigger=run.trigger
        )
        self._announce(stored[0].id, started)
        self.manager.wake()
        return run, {job.node or "": job for job in stored}

    def _announce(self, job_id: int, record: Record) -> None:
        """A workflow event on the global stream, stored with one of the run's jobs."""
        self.store.jobs.append_output(job_id, [], [record], {})

    def _node_job(
        self, spec: WorkflowSpec, node: NodeSpec, run_args: dict[str, Any], now: datetime
    ) -> NewJob:
        job_type = self.manager.catalog.require(node.type)
        try:
            args = job_type.validate_args(node_args(spec, node.name, job_type, run_args))
        except ArgsInvalid as exc:
            raise exc.under_args(f"node {node.name!r}: the arguments are invalid") from exc
        job_spec = job_type.resolve(args)
        if node.timeout is not None:
            job_spec = dataclasses.replace(job_spec, timeout=node.timeout)
        if node.retries is not None:
            job_spec = dataclasses.replace(job_spec, retries=node.retries.policy())
        if node.sla is not None:
            job_spec = dataclasses.replace(job_spec, sla=node.sla.policy())
        run_at = not_before(spec, node.name, now)
        if node.depends_on:
            state = JobState.WAITING
        else:
            state = JobState.SCHEDULED if run_at and run_at > now else JobState.QUEUED
        return NewJob(
            type=job_type.name,
            args=args,
            spec=job_spec,
            queue=node.queue or job_type.queue,
            priority=job_type.priority if node.priority is None else node.priority,
            state=state,
            run_at=run_at,
            name=f"{spec.name}.{node.name}",
            max_attempts=job_spec.retries.max + 1,
            node=node.name,
        )

    # -- reading -----------------------------------------------------------
    def get(self, run_id: int) -> RunView:
        return self._run(run_id), self.latest_jobs(run_id)

    def view(self, run_id: int) -> tuple[WorkflowRun, dict[str, NodeJob]]:
        """The run and each node's newest job in a few columns: what is shown of it (and
        polled while it runs), without reading its jobs' whole rows."""
        return self._run(run_id), self.store.runs.node_jobs(run_id)

    def _run(self, run_id: int) -> WorkflowRun:
        run = self.store.runs.get_run(run_id)
        if run is None:
            raise NotFound(f"no workflow run with id {run_id}")
        return run

    def latest_jobs(self, run_id: int) -> dict[str, Job]:
        """Each node's newest job (a restarted node has several), in the order the run made
        its nodes: a topological one."""
        latest: dict[str, Job] = {}
        for job in self.store.runs.run_jobs(run_id):
            if job.node is not None:
                latest[job.node] = job  # run_jobs is oldest first
        return latest

    # -- keeping the run's state -------------------------------------------
    def job_ended(self, job: Job) -> None:
        self.jobs_ended([job])

    def jobs_ended(self, jobs: Iterable[Job]) -> None:
        """Nodes ended: each run they belong to is looked at once, on behalf of its last one."""
        last = {job.workflow_run: job.id for job in jobs if job.workflow_run is not None}
        for run_id, job_id in sorted(last.items()):
            self.refresh(run_id, job_id)

    def job_restarted(self, job: Job) -> None:
        """A node's job was restarted as ``job``: a run that had ended is running again."""
        if job.workflow_run is not None:
            self.refresh(job.workflow_run, job.id)

    def refresh(self, run_id: int, by: int | None = None) -> WorkflowRun | None:
        """Derive the run's state from its nodes' latest jobs.

        ``by`` is the job whose change this is: a run that ends (or reopens) because
        of it is announced on the global stream, stored with that job. A run that
        changed meanwhile is looked at again, so two refreshes racing (a node ends
        while another is restarted) leave the state of the later one.
        """
        for _ in range(_REFRESHES):
            found = self.store.runs.live_run(run_id)
            if found is None:
                return None
            run, live = found
            state, ended = self._derived_state(run, live)
            if state is run.state and ended is (run.finished_at is not None):
                return run
            updated = self._move(run, state, ended, by)
            if updated is not None:
                return updated
        return self.store.runs.get_run(run_id)

    def _derived_state(self, run: WorkflowRun, live: bool) -> tuple[RunState, bool]:
        """The run's state, and whether it has ended: none of its nodes is ``live``.

        A stopped run stays ``stopped`` while its nodes are killed, and has ended
        (``finished_at``) once none is live: then retention may remove it.
        """
        stopped = run.state is RunState.STOPPED
        if live:  # most ends of a node end nothing more
            return (RunState.STOPPED if stopped else RunState.RUNNING), False
        if all(
            node.state is JobState.SUCCEEDED for node in self.store.runs.node_jobs(run.id).values()
        ):
            return RunState.SUCCEEDED, True
        return (RunState.STOPPED if stopped else RunState.FAILED), True

    def _move(
        self, run: WorkflowRun, state: RunState, ended: bool, by: int | None
    ) -> WorkflowRun | None:
        """Compare-and-set the run to ``state`` and announce it; None if it changed meanwhile.

        A stopped run only gets (or loses) its ``finished_at``: it tells no one.
        """
        now = self._clock()
        values = {"state": state, "finished_at": now if ended else None}
        updated = self.store.runs.update_run(run.id, [run.state], values, now)
        if updated is None or by is None or state is RunState.STOPPED:
            return updated
        if state is RunState.RUNNING:  # a node of an ended run was restarted
            self._announce(by, WorkflowRunReopened(at=now, run_id=run.id, workflow=run.workflow))
            return updated
        failed = None
        if state is RunState.FAILED:
            nodes = self.store.runs.node_jobs(run.id)
            # A node a user killed (not a stop's) fails its run as a failed node does.
            failed = tuple(sorted(n for n, job in nodes.items() if job.state in RETRIED))
        finished = WorkflowRunFinished(
            at=now, run_id=run.id, workflow=updated.workflow, state=state, failed_nodes=failed
        )
        self._announce(by, finished)  # the notifier tells workflow_failed / _succeeded
        return updated

    # -- control -----------------------------------------------------------
    def stop(self, run_id: int) -> RunView:
        """Kill the running nodes and cancel the pending ones.

        Downstream nodes go first: a node cancelled before what it waits for ends
        ``killed`` by the stop, where cancelling its upstream first would block it
        (``upstream_failed``, a problem that notifies). A stopped run tells no one.
        """
        run, jobs = self.get(run_id)
        stopped = self.store.runs.update_run(
            run_id, [RunState.RUNNING], {"state": RunState.STOPPED}, self._clock()
        )
        if stopped is None:
            run = self._run(run_id)  # it may have ended meanwhile
            message = f"workflow run {run_id} is {run.state.value}: only a running run stops"
            raise Conflict(message, state=run.state.value)
        live = [job for job in reversed(jobs.values()) if not job.state.terminal]
        for job in live:  # downstream first
            with contextlib.suppress(Conflict):  # it ended meanwhile
                self.manager.act(job.id, Event.KILL)
        # A node cancelled here ends at once and refreshes the run on its own behalf (with
        # it, the run's end is told); a refresh on nobody's could end it untold. With no
        # node to stop, the stopped run has ended now (a stopped run tells no one).
        if not live:
            self.refresh(run_id)
        return self.get(run_id)

    def resume(self, run_id: int) -> RunView:
        """Run again, in order, every node that a stop killed or cancelled (409 unless stopped:
        a run that was not stopped has none, and a failed one is retried).

        Only ``killed`` nodes run again. A node that a failure blocked
        (``upstream_failed``) stays so, with its job and without a second
        notification, unless what blocked it is a killed node run again: then it
        waits again. The failed node is for ``retry-failed`` once the run has ended.
        """
        found = self.store.runs.live_run(run_id)
        if found is None:
            raise NotFound(f"no workflow run with id {run_id}")
        run, live = found
        if run.state is RunState.STOPPED and live:
            message = (
                f"workflow run {run_id} is still being stopped: resume it once its killed "
                "nodes have ended"
            )
            raise Conflict(message, state=run.state.value)
        if run.state is not RunState.STOPPED:
            hint = ""
            if run.state is RunState.FAILED:
                hint = "; a failed run is run again by retry-failed or by restarting a node"
            message = f"workflow run {run_id} is {run.state.value}: only a stopped run resumes"
            raise Conflict(message + hint, state=run.state.value)
        return self._rerun(run, {JobState.KILLED})

    def retry_failed(self, run_id: int) -> RunView:
        """Restart the failed nodes (and those a user killed); what they blocked runs when
        they succeed.

        409, changing nothing, on a stopped run (it is resumed) and on a run with no
        failed node (there is nothing to retry), whatever its state.
        """
        run, nodes = self.view(run_id)
        if run.state is RunState.STOPPED:
            message = f"workflow run {run_id} is stopped: a stopped run is resumed, not retried"
            raise Conflict(message, state=run.state.value)
        if not any(node.state in RETRIED for node in nodes.values()):
            message = (
                f"workflow run {run_id} is {run.state.value}: no node failed, nothing to retry"
            )
            raise Conflict(message, state=run.state.value)
        return self._rerun(run, set(RETRIED))

    def _node_order(self, run: WorkflowRun, nodes: Mapping[str, NodeJob]) -> list[str]:
        """The run's own nodes: in the workflow's order as configured now (upstream
        first), then those it no longer has (renamed or removed since the run, or the
        whole workflow), by their newest jobs' ids. Their jobs are the run's, and a
        restart needs nothing of the configuration (a node restarted before its upstream
        waits for the upstream's restart all the same: its dependencies follow it)."""
        spec = self.workflows.get(run.workflow)
        known = [name for name in topological_order(spec) if name in nodes] if spec else []
        rest = sorted(set(nodes) - set(known), key=lambda name: nodes[name].job_id)
        return known + rest

    def _rerun(self, run: WorkflowRun, states: set[JobState]) -> RunView:
        """Restart, in order, the nodes whose newest job is in ``states``; a stopped or
        failed run is ``running`` again first."""
        now = self._clock()
        # Each node checked before anything changes: a node whose type is gone from the
        # file, or refuses its arguments now, is a 422 (or 404) that leaves the run as it
        # was, not a run reopened with nothing to run.
        nodes = self.store.runs.node_jobs(run.id)
        if not any(node.state in states for node in nodes.values()):
            # Retention removed the nodes' jobs (they are kept for less time than runs):
            # reopened with none, the run would be judged ``succeeded``, though nothing ran.
            gone = "" if nodes else " (retention removed their jobs)"
            message = (
                f"workflow run {run.id} is {run.state.value}: no node of it to run again{gone}"
            )
            raise Conflict(message, state=run.state.value)
        for node in nodes.values():
            if node.state in states:
                with contextlib.suppress(Conflict):  # restarted by someone else meanwhile
                    self.manager.check_restart(node.job_id)
        reopened = None
        if run.state is not RunState.RUNNING:
            values = {"state": RunState.RUNNING, "finished_at": None}
            ended = [RunState.STOPPED, RunState.FAILED]
            reopened = self.store.runs.update_run(run.id, ended, values, now)
            if reopened is None:  # it succeeded, or changed meanwhile
                state = self._run(run.id).state
                message = f"workflow run {run.id} is {state.value}: nothing of it to run again"
                raise Conflict(message, state=state.value)
        restarted: list[Job] = []
        # The reopening is stored with the first node's new job, as it is created: a node
        # that ends at once cannot end the run (and tell so) before it is told.
        told: list[Record] = []
        if reopened is not None:
            told.append(WorkflowRunReopened(at=now, run_id=run.id, workflow=reopened.workflow))
        # Read once: a job in ``states`` has ended, and stays so unless it is restarted,
        # which restart itself refuses a second time.
        try:
            for name in self._node_order(run, nodes):
                node = nodes[name]
                if node.state in states:
                    with contextlib.suppress(Conflict):  # restarted by someone else meanwhile
                        records = [] if restarted else told
                        job = self.manager.restart(node.job_id, records=records, hold=True)
                        restarted.append(job)
        except JobyardError:  # the file changed since the check: as it was, if nothing ran
            if reopened is not None and not restarted:
                back = {"state": run.state, "finished_at": run.finished_at}
                self.store.runs.update_run(run.id, [RunState.RUNNING], back, self._clock())
            else:  # what was restarted runs: the run says so, the refusal is told all the same
                self._release(restarted)
                self._reopened(run)
            raise
        except BaseException:  # a database's error: what was restarted runs all the same
            self._release(restarted)
            raise
        self._release(restarted)
        self._reopened(run)
        return self.get(run.id)

    def _release(self, restarted: list[Job]) -> None:
        """Start the nodes restarted together, held until all of them were: one that fails
        at once cannot end the run while the others are still to be restarted (and a run
        of many failing nodes is not ended and reopened once per node, telling each)."""
        for job in restarted:
            if job.state is not JobState.HELD:
                continue
            try:
                self.manager.act(job.id, Event.START)
            except Conflict as exc:  # a user started or killed it meanwhile, most likely
                log.warning("a retried node was not started: %s", exc, extra={"job": job.id})

    def _reopened(self, run: WorkflowRun) -> None:
        """Judge a run reopened (its reopening told with its first new job) again: nothing
        may be left to run (a node run again was blocked at once, or has ended), and then
        it ends here, that end announced, stored with its newest job."""
        after = self.store.runs.node_jobs(run.id).values()
        newest = max((node.job_id for node in after), default=None)
        self.refresh(run.id, newest)
