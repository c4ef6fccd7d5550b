"""Workflow definitions as frozen data: a :class:`WorkflowSpec` and its :class:`NodeSpec`\\ s.

Built by :func:`jobyard.workflows.dag.parse_workflows`, which checks them against
the job types; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from typing import Any

from jobyard.errors import Invalid
from jobyard.jobtypes.params import FieldError, summary
from jobyard.jobtypes.spec import RetriesSpec, SlaSpec

DEFAULT_TIMEZONE = "UTC"


class WorkflowInvalid(Invalid):
    """Workflow definitions with problems; ``errors`` lists every one with its field path."""

    def __init__(self, errors: list[FieldError], detail: str = "the workflows are invalid") -> None:
        super().__init__(summary(detail, errors), errors)


@dataclass(frozen=True)
class NodeSpec:
    """One node of a workflow: a job of type ``type`` once every ``depends_on`` succeeded.

    ``args`` are the node's own arguments as written (checked against the type
    together with the workflow's ``args``). ``at`` (a local time of day) or
    ``cron`` hold the node until that time; ``queue``, ``priority``,
    ``timeout`` (seconds), ``retries`` and ``sla`` override the type's when set.
    """

    name: str
    type: str
    args: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    at: time | None = None
    cron: str | None = None
    queue: str | None = None
    priority: int | None = None
    timeout: float | None = None
    retries: RetriesSpec | None = None
    sla: SlaSpec | None = None


@dataclass(frozen=True)
class WorkflowSpec:
    """A named DAG of nodes, in file order; ``args`` are defaults a run may override."""

    name: str
    description: str = ""
    timezone: str = DEFAULT_TIMEZONE
    args: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, NodeSpec] = field(default_factory=dict)

    def deps(self) -> dict[str, tuple[str, ...]]:
        """Each node's upstream nodes: the graph the helpers in :mod:`workflows` walk."""
        return {name: node.depends_on for name, node in self.nodes.items()}
