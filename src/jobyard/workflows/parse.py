"""Parsing the ``workflows`` section: every problem at once, each with its field path."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from jobyard.jobtypes.params import FieldError, Problems, join_path
from jobyard.jobtypes.spec import ArgsInvalid, JobType, queue_problems
from jobyard.spelling import did_you_mean, unknown_key
from jobyard.workflows import fields as check
from jobyard.workflows.graph import cycles
from jobyard.workflows.spec import NodeSpec, WorkflowInvalid, WorkflowSpec

T = TypeVar("T")

WORKFLOW_KEYS = ("description", "timezone", "args", "nodes")
NODE_KEYS = (
    "type",
    "args",
    "depends_on",
    "at",
    "cron",
    "queue",
    "priority",
    "timeout",
    "retries",
    "sla",
)
_OPTIONAL: dict[str, Callable[[Any], Any]] = {
    "at": check.time_of_day,
    "cron": check.cron,
    "queue": check.queue,
    "priority": check.priority,
    "timeout": check.timeout,
    "retries": check.retries,
    "sla": check.sla,
}


def parse_workflows(
    raw: Mapping[str, Any],
    job_types: Mapping[str, JobType],
    *,
    queues: Collection[str] | None = None,
    invalid_types: Collection[str] = (),
) -> dict[str, WorkflowSpec]:
    """Build the workflows of a ``workflows:`` mapping, checked against ``job_types``.

    Raises :class:`WorkflowInvalid` listing every problem, each with a field path
    from ``workflows`` down, e.g. ``workflows.nightly.nodes.transform.depends_on``.
    ``queues``, when given, are the declared queues a node's ``queue`` must name.
    ``invalid_types`` names job types that exist but failed their own checks:
    nodes of those types are not reported as unknown, nor their args checked.
    """
    parser = _Parser(job_types, queues, invalid_types)
    specs = {}
    for name, value in raw.items():
        spec = parser.workflow(str(name), value)
        if spec is not None:
            specs[spec.name] = spec
    if parser.problems:
        raise WorkflowInvalid(parser.problems)
    return specs


class _Parser:
    def __init__(
        self,
        job_types: Mapping[str, JobType],
        queues: Collection[str] | None,
        invalid_types: Collection[str],
    ) -> None:
        self.job_types = job_types
        self.queues = queues
        self.invalid_types = invalid_types
        self.problems: list[FieldError] = []
        self.bad_args: set[str] = set()  # node paths whose args are not a mapping
        self._checked: dict[tuple[str, str], list[FieldError]] = {}

    def problem(self, field: str, message: str) -> None:
        self.problems.append({"field": field, "message": message})

    def field(self, path: str, value: Any, parse: Callable[[Any], T]) -> T | None:
        """``parse(value)``, or ``None`` after recording why it failed."""
        try:
            return parse(value)
        except Problems as exc:
            for problem in exc.problems:
                self.problem(join_path(path, problem["field"]), problem["message"])
        except ValueError as exc:
            self.problem(path, str(exc))
        return None

    def keys(self, path: str, data: Mapping[str, Any], known: tuple[str, ...]) -> None:
        for key in data:
            if key not in known:
                self.problem(join_path(path, key), unknown_key(key, known))

    def name(self, path: str, name: str, what: str) -> None:
        if not check.NAME.fullmatch(name):
            self.problem(path, f"invalid {what} name: {check.NAME_RULE}")

    # -- a workflow ---------------------------------------------------------------
    def workflow(self, name: str, value: Any) -> WorkflowSpec | None:
        base = join_path("workflows", name)
        self.name(base, name, "workflow")
        if not isinstance(value, Mapping):
            self.problem(
                base, "a workflow is a mapping with nodes (and description, timezone, args)"
            )
            return None
        data = {str(key): item for key, item in value.items()}
        self.keys(base, data, WORKFLOW_KEYS)
        texts = self.texts(base, data)
        args = self.field(join_path(base, "args"), data.get("args"), check.args) or {}
        raw = self.raw_nodes(join_path(base, "nodes"), data)
        nodes = self.nodes(base, raw)
        self.graph(base, nodes, set(raw))
        self.check_args(base, args, nodes.values())
        return WorkflowSpec(name=name, args=args, nodes=nodes, **texts)

    def texts(self, base: str, data: Mapping[str, Any]) -> dict[str, str]:
        """The workflow's ``description`` and ``timezone``, where given and valid."""
        found = {}
        for key, parse in (("description", check.text), ("timezone", check.timezone)):
            value = data.get(key)
            if value is not None and (text := self.field(join_path(base, key), value, parse)):
                found[key] = text
        return found

    def raw_nodes(self, path: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The workflow's ``nodes`` as written: a mapping of at least one (a run of none
        would do nothing, and say so by succeeding)."""
        if "nodes" not in data:
            self.problem(path, "is required")
            return {}
        raw = self.field(path, data["nodes"], check.mapping)
        if raw == {}:  # also `nodes:` with nothing after it
            self.problem(path, "a workflow needs at least one node")
        return raw or {}

    def nodes(self, base: str, raw: Mapping[str, Any]) -> dict[str, NodeSpec]:
        nodes = {}
        for name, item in raw.items():
            node = self.node(join_path(base, "nodes", name), name, item)
            if node is not None:
                nodes[name] = node
        return nodes

    def graph(self, base: str, nodes: Mapping[str, NodeSpec], known: set[str]) -> None:
        """Dependencies on missing nodes, on the node itself, and cycles.

        ``known`` holds every node name, also of nodes too broken to build.
        """
        valid: dict[str, list[str]] = {}
        for name, node in nodes.items():
            path = join_path(base, "nodes", name, "depends_on")
            valid[name] = []
            for dep in node.depends_on:
                if dep == name:
                    self.problem(path, "a node cannot depend on itself")
                elif dep not in known:
                    self.problem(path, f"unknown node {dep!r}{did_you_mean(dep, known)}")
                elif dep in nodes:
                    valid[name].append(dep)
        for cycle in cycles(valid):
            path = join_path(base, "nodes", cycle[0], "depends_on")
            self.problem(path, "cycle: " + " → ".join([*cycle, cycle[0]]))

    # -- a node -------------------------------------------------------------------
    def node(self, path: str, name: str, value: Any) -> NodeSpec | None:
        self.name(path, name, "node")
        if not isinstance(value, Mapping):
            self.problem(path, "a node is a mapping with type (and args, depends_on, …)")
            return None
        data = {str(key): item for key, item in value.items()}
        self.keys(path, data, NODE_KEYS)
        if "at" in data and "cron" in data:
            self.problem(join_path(path, "cron"), "give at or cron, not both")
        args = self.field(join_path(path, "args"), data.get("args"), check.args)
        if args is None:
            self.bad_args.add(path)
        optional = {
            key: self.field(join_path(path, key), data[key], parse)
            for key, parse in _OPTIONAL.items()
            if data.get(key) is not None
        }
        self.check_queue(join_path(path, "queue"), optional.get("queue"))
        depends_on = self.field(
            join_path(path, "depends_on"), data.get("depends_on"), check.depends_on
        )
        return NodeSpec(
            name=name,
            type=self.node_type(join_path(path, "type"), data.get("type")),
            args=args or {},
            depends_on=depends_on or (),
            **optional,
        )

    def check_queue(self, path: str, queue: str | None) -> None:
        for error in queue_problems(queue, self.queues) if queue is not None else []:
            self.problem(path, error["message"])

    def node_type(self, path: str, value: Any) -> str:
        if value is None:
            self.problem(path, "is required")
            return ""
        if not isinstance(value, str):
            self.problem(path, "must be a job type name")
            return ""
        if value not in self.job_types and value not in self.invalid_types:
            suggestion = did_you_mean(value, self.job_types)
            self.problem(path, f"unknown job type {value!r}{suggestion}")
        return value

    # -- arguments ----------------------------------------------------------------
    def check_args(self, base: str, args: Mapping[str, Any], nodes: Collection[NodeSpec]) -> None:
        """Each node's args with the workflow's, against its type; unused workflow args."""
        declared: set[str] = set()
        every_type_known = True
        for node in nodes:
            job_type = self.job_types.get(node.type)
            if job_type is None:
                every_type_known = False  # reported already; its params are unknown
                continue
            declared |= job_type.declared_params()
            if join_path(base, "nodes", node.name) not in self.bad_args:
                self.node_args(base, args, node, job_type)
        if every_type_known:
            for key, message in check.undeclared(args, declared):
                self.problem(join_path(base, "args", key), message)

    def node_args(
        self, base: str, args: Mapping[str, Any], node: NodeSpec, job_type: JobType
    ) -> None:
        declared = job_type.declared_params()
        merged = {**{k: v for k, v in args.items() if k in declared}, **node.args}
        for error in self.args_errors(job_type, merged):
            top = error["field"].split(".")[0]
            if top and top not in node.args and top in args:
                message = f"for node {node.name!r}: {error['message']}"
                self.problem(join_path(base, "args", error["field"]), message)
            else:
                path = join_path(base, "nodes", node.name, "args", error["field"])
                self.problem(path, error["message"])

    def args_errors(self, job_type: JobType, args: dict[str, Any]) -> list[FieldError]:
        key = (job_type.name, repr(args))  # many nodes often share the same args
        if key not in self._checked:
            try:
                job_type.validate_args(args)
                self._checked[key] = []
            except ArgsInvalid as exc:
                self._checked[key] = exc.errors
        return self._checked[key]
