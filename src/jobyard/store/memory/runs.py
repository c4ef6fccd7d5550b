"""Workflow runs and their node jobs, in memory."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from jobyard.models import Condition, Job, NewJob, NodeJob, RunState, WorkflowRun
from jobyard.store.memory.tables import Edge, Part, insert_job, json_copy, new_job, run_value, utc


class MemoryRuns(Part):
    """:class:`~jobyard.store.protocol.WorkflowStore` in memory."""

    def add_workflow_run(
        self,
        workflow: str,
        args: dict[str, Any],
        trigger: str,
        nodes: Sequence[NewJob],
        edges: Sequence[tuple[int, int]],
        now: datetime,
    ) -> tuple[WorkflowRun, list[Job]]:
        now = utc(now)
        t = self._t
        with t.lock:
            run = WorkflowRun(
                t.next_id("runs"), workflow, RunState.RUNNING, json_copy(args), trigger, now, now
            )
            t.runs[run.id] = run
            waits = Counter(waiting for waiting, _ in edges)
            jobs = [
                new_job(t.next_id("jobs"), node, now, deps_pending=waits[i], workflow_run=run.id)
                for i, node in enumerate(nodes)
            ]
            for job, node in zip(jobs, nodes, strict=True):
                insert_job(t, job, node.state)
            for waiting, upstream in edges:
                t.edges[(jobs[waiting].id, jobs[upstream].id)] = Edge(Condition.SUCCEEDED, False)
            return run, jobs

    def get_run(self, run_id: int) -> WorkflowRun | None:
        with self._t.lock:
            return self._t.runs.get(run_id)

    def list_runs(
        self, page: int, per_page: int, workflow: str | None = None, state: str | None = None
    ) -> tuple[list[WorkflowRun], int]:
        with self._t.lock:
            runs = [
                run
                for _, run in sorted(self._t.runs.items(), reverse=True)
                if (not workflow or run.workflow == workflow) and (not state or run.state == state)
            ]
        return runs[(page - 1) * per_page : page * per_page], len(runs)

    def live_run(self, run_id: int) -> tuple[WorkflowRun, bool] | None:
        with self._t.lock:
            run = self._t.runs.get(run_id)
            return None if run is None else (run, self._live(run_id))

    def _live(self, run_id: int) -> bool:
        with self._t.lock:
            return any(
                job.workflow_run == run_id and not job.state.terminal and job.restarted_as is None
                for job in self._t.jobs.values()
            )

    def node_jobs(self, run_id: int) -> dict[str, NodeJob]:
        with self._t.lock:
            jobs = self._t.where(lambda job: job.workflow_run == run_id)
        return {job.node: NodeJob.of(job) for job in jobs if job.node}  # the newest last

    def run_jobs(self, run_id: int) -> list[Job]:
        with self._t.lock:
            return self._t.where(lambda job: job.workflow_run == run_id)

    def update_run(
        self, run_id: int, expect: Collection[RunState], values: dict[str, Any], now: datetime
    ) -> WorkflowRun | None:
        changes = {name: run_value(name, value) for name, value in values.items()}
        with self._t.lock:
            run = self._t.runs.get(run_id)
            if run is None or run.state not in expect:
                return None
            run = self._t.runs[run_id] = dataclasses.replace(run, **changes, updated_at=utc(now))
            return run
