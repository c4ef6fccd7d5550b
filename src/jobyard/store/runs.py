"""Workflow runs: a run and its node jobs, stored together; the run's state."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, exists, func, insert, select, update

from jobyard.models import Job, NodeJob, RunState, WorkflowRun
from jobyard.states import JobState
from jobyard.store.part import Part
from jobyard.store.rows import jobs_where, load_json, possible_id
from jobyard.store.submission import insert_graph
from jobyard.store.tables import jobs
from jobyard.store.tables import workflow_runs as runs

if TYPE_CHECKING:
    from jobyard.models import NewJob


class SqlRuns(Part):
    """:class:`~jobyard.store.protocol.WorkflowStore` on SQL."""

    def add_workflow_run(
        self,
        workflow: str,
        args: dict[str, Any],
        trigger: str,
        nodes: Sequence[NewJob],
        edges: Sequence[tuple[int, int]],
        now: datetime,
    ) -> tuple[WorkflowRun, list[Job]]:
        """A run and its node jobs in one transaction; ``edges`` are (waiting, upstream) indexes."""
        with self._write() as conn:
            return insert_run(conn, workflow, args, trigger, nodes, edges, now)

    def get_run(self, run_id: int) -> WorkflowRun | None:
        if not possible_id(run_id):
            return None
        with self._peek() as conn:
            return get_run(conn, run_id)

    def list_runs(
        self, page: int, per_page: int, workflow: str | None = None, state: str | None = None
    ) -> tuple[list[WorkflowRun], int]:
        with self._read() as conn:
            return list_runs(conn, page, per_page, workflow, state)

    def live_run(self, run_id: int) -> tuple[WorkflowRun, bool] | None:
        """The run, and whether a node's newest job is not terminal yet, in one statement
        (an index lookup, not a scan)."""
        with self._peek() as conn:
            row = conn.execute(_LIVE_RUN, {"run_id": run_id}).mappings().first()
        if row is None:
            return None
        data = dict(row)
        live = bool(data.pop("live"))
        return run_from_row(data), live

    def node_jobs(self, run_id: int) -> dict[str, NodeJob]:
        """Each node's newest job: five columns, not whole jobs (a restarted node's
        newest comes last, and stays)."""
        with self._peek() as conn:
            rows = conn.execute(_NODE_JOBS, {"run_id": run_id}).all()
        return {
            node: NodeJob(job_id, JobState(state), attempt, restarted_from)
            for node, job_id, state, attempt, restarted_from in rows
            if node
        }

    def run_jobs(self, run_id: int) -> list[Job]:
        """Every job of the run (restarted nodes have several), oldest first."""
        with self._read() as conn:
            return jobs_where(conn, jobs.c.workflow_run == run_id)

    def update_run(
        self, run_id: int, expect: Collection[RunState], values: dict[str, Any], now: datetime
    ) -> WorkflowRun | None:
        """Compare-and-set on the run's state; None when it was not in ``expect``."""
        with self._write() as conn:
            return update_run(conn, run_id, expect, values, now)


def run_from_row(row: Mapping[Any, Any]) -> WorkflowRun:
    data = dict(row)
    data["state"] = RunState(data["state"])
    data["args"] = load_json(data["args"]) or {}
    return WorkflowRun(**data)


def insert_run(
    conn: Connection,
    workflow: str,
    args: dict[str, Any],
    trigger: str,
    nodes: Sequence[NewJob],
    edges: Sequence[tuple[int, int]],
    now: datetime,
) -> tuple[WorkflowRun, list[Job]]:
    row = {
        "workflow": workflow,
        "state": RunState.RUNNING.value,
        "args": args,
        "trigger": trigger,
        "created_at": now,
        "updated_at": now,
    }
    run_id = conn.execute(insert(runs).returning(runs.c.id), [row]).scalar_one()
    jobs = insert_graph(conn, nodes, edges, now, workflow_run=run_id)
    run = get_run(conn, run_id)
    assert run is not None
    return run, jobs


# Built once: a run is looked at after every batch of its nodes' ends.
# A node's newest job is not terminal yet (a restarted job's restart is newer).
_LIVE_NODE = exists().where(
    jobs.c.workflow_run == bindparam("run_id"),
    jobs.c.state.in_([state.value for state in JobState if not state.terminal]),
    jobs.c.restarted_as.is_(None),
)
_RUN_BY_ID = select(runs).where(runs.c.id == bindparam("run_id"))
_LIVE_RUN = _RUN_BY_ID.add_columns(_LIVE_NODE.label("live"))
_NODE_JOBS = (
    select(jobs.c.node, jobs.c.id, jobs.c.state, jobs.c.attempt, jobs.c.restarted_from)
    .where(jobs.c.workflow_run == bindparam("run_id"))
    .order_by(jobs.c.id)
)


def get_run(conn: Connection, run_id: int) -> WorkflowRun | None:
    row = conn.execute(_RUN_BY_ID, {"run_id": run_id}).mappings().first()
    return None if row is None else run_from_row(row)


def list_runs(
    conn: Connection, page: int, per_page: int, workflow: str | None, state: str | None
) -> tuple[list[WorkflowRun], int]:
    where = []
    if workflow:
        where.append(runs.c.workflow == workflow)
    if state:
        where.append(runs.c.state == state)
    total = conn.execute(select(func.count()).select_from(runs).where(*where)).scalar_one()
    query = (
        select(runs)
        .where(*where)
        .order_by(runs.c.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return [run_from_row(row) for row in conn.execute(query).mappings()], int(total)


def update_run(
    conn: Connection,
    run_id: int,
    expect: Collection[RunState],
    values: dict[str, Any],
    now: datetime,
) -> WorkflowRun | None:
    columns = {k: v.value if isinstance(v, RunState) else v for k, v in values.items()}
    changed = conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.state.in_([s.value for s in expect]))
        .values(**columns, updated_at=now)
    ).rowcount
    return get_run(conn, run_id) if changed else None
