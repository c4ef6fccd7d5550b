"""Workflows: named DAGs of jobs, defined under ``workflows:`` in ``jobyard.yaml``.

:func:`parse_workflows` checks the definitions against the job types and builds
frozen :class:`WorkflowSpec`\\ s; the helpers below walk their graph (all pure,
iterative and O(nodes + edges)) and work out what a run of a node needs: its
arguments (:func:`node_args`) and the earliest time it may start
(:func:`not_before`). See ``docs/workflows.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cronsim import CronSim

from jobyard.jobtypes.params import ArgsInvalid, FieldError
from jobyard.jobtypes.spec import JobType
from jobyard.workflows import graph
from jobyard.workflows.fields import undeclared
from jobyard.workflows.parse import parse_workflows
from jobyard.workflows.spec import DEFAULT_TIMEZONE, NodeSpec, WorkflowInvalid, WorkflowSpec

__all__ = [
    "DEFAULT_TIMEZONE",
    "NodeSpec",
    "WorkflowInvalid",
    "WorkflowSpec",
    "descendants",
    "downstream",
    "edges",
    "node_args",
    "not_before",
    "parse_workflows",
    "roots",
    "topological_order",
]


# -- the graph ----------------------------------------------------------------------
def topological_order(spec: WorkflowSpec) -> list[str]:
    """Every node after all of its upstream nodes; ties keep file order."""
    order, left = graph.kahn_order(spec.deps())
    if left:  # parse_workflows refuses cycles, so only a hand-built spec gets here
        raise ValueError(f"the workflow {spec.name!r} has a cycle: {left[0]!r} can never start")
    return order


def roots(spec: WorkflowSpec) -> list[str]:
    """The nodes without upstream: a run starts them first, in file order."""
    return [name for name, node in spec.nodes.items() if not node.depends_on]


def downstream(spec: WorkflowSpec) -> dict[str, tuple[str, ...]]:
    """Each node's direct dependents, in file order (leaves map to ``()``)."""
    return graph.dependents(spec.deps())


def descendants(spec: WorkflowSpec, node: str) -> set[str]:
    """Every node downstream of ``node``, directly or not (``node`` excluded).

    These are the nodes a failure of ``node`` makes ``upstream_failed``.
    """
    if node not in spec.nodes:
        raise KeyError(node)
    return graph.descendants(downstream(spec), node)


def edges(spec: WorkflowSpec) -> list[tuple[str, str]]:
    """Every dependency as ``(upstream, downstream)``, in file order of the downstream."""
    return [(dep, name) for name, node in spec.nodes.items() for dep in node.depends_on]


# -- a run --------------------------------------------------------------------------
def node_args(
    spec: WorkflowSpec,
    node: str,
    job_type: JobType,
    run_args: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The arguments of ``node``'s job in a run given ``run_args``, before validation.

    Lowest to highest: the type's defaults (filled in by ``validate_args``), the
    workflow's ``args``, the run's ``run_args``, the node's own ``args``. Workflow
    and run args reach a node only for params its type declares.
    """
    declared = job_type.declared_params()
    shared = {**spec.args, **(run_args or {})}
    return {**{k: v for k, v in shared.items() if k in declared}, **spec.nodes[node].args}


def run_args_problems(
    spec: WorkflowSpec, type_of: Callable[[str], JobType], run_args: Mapping[str, Any]
) -> list[FieldError]:
    """What starting a run of ``spec`` with ``run_args`` would refuse, each field below
    ``args``: keys no node's type declares (a typo, most likely), then values a node's
    type refuses (once per field and message, for the first such node).

    ``type_of`` gives a node's job type by name. A run, and a schedule of the
    workflow (from the file or the API), are checked by this one function.
    """
    types = {name: type_of(node.type) for name, node in spec.nodes.items()}
    declared = set().union(*(job_type.declared_params() for job_type in types.values()))
    problems: list[FieldError] = [
        {"field": key, "message": message} for key, message in undeclared(run_args, declared)
    ]
    seen: set[tuple[str, str]] = set()
    for name, job_type in types.items():
        try:
            job_type.validate_args(node_args(spec, name, job_type, run_args))
        except ArgsInvalid as exc:
            for error in exc.errors:
                if (error["field"], error["message"]) not in seen:
                    seen.add((error["field"], error["message"]))
                    message = f"for node {name!r}: {error['message']}"
                    problems.append({"field": error["field"], "message": message})
    return problems


def not_before(spec: WorkflowSpec, node: str, run_started: datetime) -> datetime | None:
    """The earliest time ``node`` may start in a run started at ``run_started``.

    In the workflow's time zone: for ``at``, that time of day on the day the run
    started (already past if the run started later: then no wait, like Airflow's
    ``TimeSensor``); for ``cron``, its first match at or after the run's start.
    ``None`` for a node with neither. The node still waits for its upstream.
    """
    at, cron = spec.nodes[node].at, spec.nodes[node].cron
    if at is None and cron is None:
        return None
    if run_started.tzinfo is None:
        raise ValueError("run_started must be timezone-aware")
    zone = ZoneInfo(spec.timezone)
    local = run_started.astimezone(zone)
    if at is not None:
        wall = datetime.combine(local.date(), at, tzinfo=zone)
        return wall.astimezone(UTC).astimezone(zone)  # normalise a time in a DST gap
    # cronsim yields times strictly after its start: step back so a match at the start counts
    fire: datetime = next(CronSim(str(cron), local - timedelta(microseconds=1)))
    return fire
