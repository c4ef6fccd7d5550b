"""The job configuration file (``jobyard.yaml``): job types, queues and workflows.

Job types declared in Python with ``@jobyard.job`` come from the modules listed
under ``job_modules`` (:mod:`jobyard.jobtypes.modules`), imported while loading.
Schedules, notifications, the modules to ``preload``, the variables jobs may see
of the worker's environment (``pass_env``) and whether the API may change job
types (``api_job_types``) and how long finished work is kept (``retention``) live
in the same file too. Every problem is
reported at once, one line each, as ``file:line: field: message``, with the
line taken from the YAML node nearest to the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobyard.jobtypes.executor import Executor
from jobyard.jobtypes.modules import DeclarationInvalid, load_module
from jobyard.jobtypes.params import ArgsInvalid, FieldError
from jobyard.jobtypes.spec import (
    NAME_RE,
    JobType,
    JobTypeInvalid,
    parse_job_type,
    pydantic_problems,
    queue_problems,
    user_problems,
    with_executor,
)
from jobyard.notify.channels import NotificationConfig, NotificationsInvalid, parse_notifications
from jobyard.notify.fields import WORKFLOW_EVENTS
from jobyard.retention.policy import RetentionPolicy, parse_retention
from jobyard.runner.environment import NAME_PATTERN as ENV_NAME_PATTERN
from jobyard.schedules.due import ScheduleInvalid, ScheduleSpec, parse_schedule
from jobyard.spelling import did_you_mean, unknown_key
from jobyard.storable import problems
from jobyard.workflows.dag import (
    WorkflowInvalid,
    WorkflowSpec,
    parse_workflows,
    run_args_problems,
)

DEFAULT_QUEUE = "default"
SECTIONS = ("job_types", "queues", "workflows", "schedules", "notifications")
ORIGIN_RE = re.compile(r"https?://[^/\s]+")
KEYS = (
    *SECTIONS,
    "job_modules",
    "preload",
    "pass_env",
    "api_job_types",
    "metrics_public",
    "cors_origins",
    "retention",
)
MODULE_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigError(Exception):
    """A configuration file that cannot be used; the message has one line per problem."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line or 0)
        super().__init__("\n".join(str(p) for p in self.problems))


class QueueConfig(BaseModel):
    """A queue: ``max_running`` caps its running jobs across the whole cluster;
    ``executor`` is where the jobs of its types run unless a type names its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_running: int | None = Field(default=None, ge=1)
    paused: bool = False
    executor: Executor = None


@dataclass(frozen=True)
class Config:
    """A loaded configuration. ``base_dir`` is the file's directory: relative ``cwd``s
    resolve against it and Python job modules are importable from it."""

    path: Path | None
    base_dir: Path
    job_types: dict[str, JobType] = field(default_factory=dict)
    queues: dict[str, QueueConfig] = field(default_factory=lambda: {DEFAULT_QUEUE: QueueConfig()})
    # The queues the file declares (its ``queues`` section and the default queue): a
    # type's queue must be one of them. None: no section, any queue.
    declared_queues: frozenset[str] | None = None
    workflows: dict[str, WorkflowSpec] = field(default_factory=dict)
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)
    notifications: NotificationConfig = field(default_factory=NotificationConfig)
    preload: tuple[str, ...] = ()
    metrics_public: bool = False  # /metrics without credentials (for a scraper)
    cors_origins: tuple[str, ...] = ()  # sites whose pages may call the API from a browser
    pass_env: tuple[str, ...] = ()  # variables of the worker's environment jobs see too
    api_job_types: bool = True  # whether the API may create, change and delete job types
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)  # what is kept how long

    def has_queue(self, name: str) -> bool:
        return name in self.queues

    def preload_modules(self) -> list[str]:
        """What a pre-started Python child imports before its first job: the module of
        every Python job type, then the ``preload`` list."""
        modules = [t.python.partition(":")[0] for t in self.job_types.values() if t.python]
        return list(dict.fromkeys([*modules, *self.preload]))


def empty_config(base_dir: Path | None = None) -> Config:
    """The configuration of a server started without a file: no types, the default queue."""
    return Config(path=None, base_dir=base_dir or Path.cwd())


def load_config(
    path: Path | str, environ: Mapping[str, str] | None = None, *, check_secrets: bool = True
) -> Config:
    """Read and validate ``path``; raises :class:`ConfigError` listing every problem.

    ``environ`` (default: the process environment) must set the variables that
    notification channels name for their secrets, unless ``check_secrets`` is false
    (a worker, which sends no notification, needs none of them).
    """
    path = Path(path)
    root, data = parse_yaml(_text_of(path), str(path))
    secrets = (os.environ if environ is None else environ) if check_secrets else None
    return _Loader(path, root, secrets).load(data)


# libyaml's when PyYAML has it: ten times faster (a 10,000-node workflow: 0.5 s, not 5 s).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_line(mark: Any, text: str) -> int:
    """The line of a YAML error's ``mark``, 1-based; at the end of the text (an unclosed
    bracket), its last line rather than the one after it."""
    return min(int(mark.line) + 1, max(len(text.splitlines()), 1))


def read_yaml(path: Path) -> tuple[yaml.Node | None, Any]:
    """The node tree and data of the YAML file ``path``, as :func:`parse_yaml` reads them;
    raises :class:`ConfigError` (the file, the line) when it cannot be read or used."""
    root, data = parse_yaml(_text_of(path), str(path))
    if refused := written_twice(root, str(path)) + unstorable(root, data, str(path)):
        raise ConfigError(refused)
    return root, data


def unstorable(root: yaml.Node | None, data: Any, name: str) -> list[ConfigProblem]:
    """The values of the file that no database can store, as the API refuses them in a
    request (``.nan``, ``.inf``, a NUL in ``"a\\0b"``, an integer beyond 64 bits): a job,
    run or schedule made of them would fail at its first submit, differently on each
    database."""
    found = islice(problems(data, aliased=True), 100)  # a file full of them: readable
    return [
        ConfigProblem(name, node_line(root, field.split(".")), field, why) for field, why in found
    ]


def _text_of(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        problem = ConfigProblem(str(path), None, "", f"cannot read: {exc.strerror}")
        raise ConfigError([problem]) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        why = f"cannot read: not UTF-8 text (byte 0x{data[exc.start]:02x})"
        raise ConfigError([ConfigProblem(str(path), line, "", why)]) from exc


_STR = "tag:yaml.org,2002:str"
# What a plain key could resolve to in YAML 1.1 other than text: yes, on, ~, 1, 2026-01-01.
_RESOLVED = {f"tag:yaml.org,2002:{kind}" for kind in ("bool", "int", "float", "null", "timestamp")}


def parse_yaml(text: str, name: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for line numbers) and its data, with the safe loader.

    Keys are text as written (YAML 1.1 made ``yes:`` True, ``on:`` True too, ``~:``
    None and ``1:`` an integer: names that were not the ones written, and could be one
    another's). Dates and times (``2026-01-01``, ``2026-01-01 10:00:00 +1``) are ISO 8601
    text: JSON has no type for them, and every field that takes one reads it from text.
    """
    loader = _SAFE_LOADER(text)
    try:
        root = loader.get_single_node()
        _keys_as_written(root)
        return root, None if root is None else _dates_as_text(loader.construct_document(root))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else yaml_line(mark, text)
        message = f"invalid YAML: {exc.problem or exc.context}"
        raise ConfigError([ConfigProblem(name, line, "", message)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(name, None, "", f"invalid YAML: {exc}")]) from exc
    finally:
        loader.dispose()


def _keys_as_written(root: yaml.Node | None) -> None:
    """The keys of the tree as the text written (see :func:`parse_yaml`)."""
    stack = [root]
    walked: set[int] = set()  # an alias names a node already walked (or itself)
    while stack:
        node = stack.pop()
        if node is None or id(node) in walked:
            continue
        walked.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack += node.value
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag in _RESOLVED:
                    key.tag = _STR
                stack += [key, value]


def _dates_as_text(data: Any) -> Any:
    """``data`` with its dates and times as ISO 8601 text, in place (see :func:`parse_yaml`)."""
    stack = [data] if isinstance(data, dict | list) else []
    walked: set[int] = set()  # an alias is the same object again (or holds itself)
    while stack:
        item = stack.pop()
        if id(item) in walked:
            continue
        walked.add(id(item))
        slots = item.items() if isinstance(item, dict) else enumerate(item)
        for slot, value in list(slots):
            if isinstance(value, date):  # a datetime too
                item[slot] = value.isoformat()
            elif isinstance(value, dict | list):
                stack.append(value)
    return data.isoformat() if isinstance(data, date) else data


def written_twice(root: yaml.Node | None, name: str) -> list[ConfigProblem]:
    """Keys written twice in one mapping: YAML keeps the last, and the first is lost unseen
    (two nodes of one name in a workflow, two job types of one name)."""
    found: list[ConfigProblem] = []
    stack: list[tuple[yaml.Node | None, list[str]]] = [(root, [])]
    walked: set[int] = set()  # an alias names a node already walked (or itself)
    while stack:
        node, path = stack.pop()
        if node is None or id(node) in walked:
            continue
        walked.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack += [(item, [*path, str(i)]) for i, item in enumerate(node.value)]
        if not isinstance(node, yaml.MappingNode):
            continue
        first: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            line = key.start_mark.line + 1
            if key.value in first:
                message = f"written twice (also on line {first[key.value]}): keep one"
                found.append(ConfigProblem(name, line, ".".join([*path, key.value]), message))
            first.setdefault(key.value, line)
            stack.append((value, [*path, key.value]))
    return found


def node_line(root: yaml.Node | None, parts: Sequence[str]) -> int | None:
    """The line (1-based) of the node at ``parts``, or of its closest existing ancestor.

    Parts that name no key are joined with the next ones, so a path split at
    every dot still finds a key with dots in it (``nodes.x.y`` → key ``x.y``).
    """
    node, line = root, None if root is None else root.start_mark.line + 1
    start = 0
    while start < len(parts):
        found = _joined_child(node, parts, start)
        if found is None:
            break
        start, (key, node) = found
        line = key.start_mark.line + 1
    return line


def _joined_child(
    node: yaml.Node | None, parts: Sequence[str], start: int
) -> tuple[int, tuple[yaml.Node, yaml.Node]] | None:
    """(where the next part starts, the child) for the shortest ``parts[start:end]`` found."""
    for end in range(start + 1, len(parts) + 1):
        child = _child(node, ".".join(parts[start:end]))
        if child is not None:
            return end, child
    return None


def _child(node: yaml.Node | None, part: str) -> tuple[yaml.Node, yaml.Node] | None:
    """(the node that names ``part``, its value): a mapping's key or a sequence's item."""
    if isinstance(node, yaml.MappingNode):
        found = [
            (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part
        ]
        return found[-1] if found else None  # the last duplicate wins, as in the data
    if isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
        item = node.value[int(part)]
        return item, item
    return None


class _Loader:
    """Builds a :class:`Config`, collecting every problem with its line."""

    def __init__(
        self, path: Path, root: yaml.Node | None, environ: Mapping[str, str] | None
    ) -> None:
        self.path = path
        self.environ = environ
        self.base_dir = path.absolute().parent
        self.root = root
        self.problems: list[ConfigProblem] = written_twice(root, str(path))
        # A type declared with @jobyard.job: its module's place in job_modules, its function
        self.declared_by: dict[str, tuple[int, str]] = {}

    def problem(self, parts: Sequence[str], message: str) -> None:
        line = node_line(self.root, parts)
        self.problems.append(ConfigProblem(str(self.path), line, ".".join(parts), message))

    def load(self, data: Any) -> Config:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            self.problem([], f"the file must be a mapping with keys like {', '.join(KEYS)}")
            raise ConfigError(self.problems)
        self.problems += unstorable(self.root, data, str(self.path))
        for key in data:
            if key not in KEYS:
                self.problem([str(key)], unknown_key(str(key), KEYS))
        sections = {name: self.section(data, name) for name in SECTIONS}
        queues = self.queues(sections["queues"])
        job_types = self.job_types(sections["job_types"])
        job_types |= self.job_modules(data.get("job_modules"), job_types)
        declared = {DEFAULT_QUEUE, *sections["queues"]} if "queues" in data else None
        written = set(sections["job_types"]) - set(job_types)  # in the file, but broken
        workflows = self.workflows(sections["workflows"], job_types, written, declared)
        named_workflows = set(sections["workflows"])  # broken ones too: they are reported
        broken = {"job_type": written, "workflow": named_workflows - set(workflows)}
        schedules = self.schedules(sections["schedules"], job_types, workflows, broken)
        notifications = self.notifications(sections["notifications"])
        preload = self.preload(data.get("preload"))
        pass_env = self.pass_env(data.get("pass_env"))
        api_job_types = self.flag(data, "api_job_types", default=True)
        metrics_public = self.flag(data, "metrics_public", default=False)
        cors_origins = self.origins(data.get("cors_origins"))
        retention = self.retention(data.get("retention"))
        if declared is not None:
            self.check_queues(job_types, declared)
        self.check_rules(notifications, written | set(job_types), named_workflows, api_job_types)
        job_types = self.queue_executors(job_types, queues)
        if self.problems:
            raise ConfigError(self.problems)
        for job_type in job_types.values():
            queues.setdefault(job_type.queue, QueueConfig())
        return Config(
            path=self.path,
            base_dir=self.base_dir,
            job_types=job_types,
            queues=queues,
            declared_queues=None if declared is None else frozenset(declared),
            workflows=workflows,
            schedules=schedules,
            notifications=notifications,
            preload=preload,
            metrics_public=metrics_public,
            cors_origins=cors_origins,
            pass_env=pass_env,
            api_job_types=api_job_types,
            retention=retention,
        )

    def section(self, data: Mapping[str, Any], name: str) -> dict[str, Any]:
        value = data.get(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem([name], f"must be a mapping, not {_kind(value)}")
            return {}
        return {str(key): item for key, item in value.items()}

    def queues(self, raw: Mapping[str, Any]) -> dict[str, QueueConfig]:
        queues = {DEFAULT_QUEUE: QueueConfig()}
        for name, value in raw.items():
            if not NAME_RE.fullmatch(name):
                self.problem(["queues", name], "a queue name is letters, digits, '_', '.', '-'")
            try:
                queues[name] = QueueConfig.model_validate(value or {})
            except ValidationError as exc:
                for problem in pydantic_problems(exc):
                    self.problem(["queues", name, *_parts(problem["field"])], problem["message"])
        return queues

    def job_types(self, raw: Mapping[str, Any]) -> dict[str, JobType]:
        job_types = {}
        for name, value in raw.items():
            if isinstance(value, Mapping) and "source" in value:
                self.problem(["job_types", name, "source"], "is set by jobyard, not in the file")
                continue
            try:
                job_type = self.with_cwd(parse_job_type(name, value, source="config"))
            except JobTypeInvalid as exc:
                for error in exc.errors:
                    self.problem(["job_types", name, *_parts(error["field"])], error["message"])
                continue
            for error in user_problems(job_type):
                self.problem(["job_types", name, error["field"]], error["message"])
            job_types[name] = job_type
        return job_types

    def queue_executors(
        self, job_types: Mapping[str, JobType], queues: Mapping[str, QueueConfig]
    ) -> dict[str, JobType]:
        """Each type on its queue's executor, unless it names its own; a type that cannot
        run there gets the error it would get naming that executor itself."""
        placed = {}
        for name, job_type in job_types.items():
            try:
                placed[name] = _on_queue_executor(job_type, queues)
            except JobTypeInvalid as exc:
                why = f" (its queue {job_type.queue!r} runs its jobs on Slurm)"
                for error in exc.errors:
                    self.type_problem(name, error["field"], error["message"] + why)
        return placed

    def type_problem(self, name: str, field: str, message: str) -> None:
        """A problem of the job type ``name`` at its ``field``: told where the type is
        written, under job_types, or of its function, under job_modules."""
        if name in self.declared_by:
            index, target = self.declared_by[name]
            self.problem(["job_modules", str(index)], f"{target}: {field}: {message}")
        else:
            self.problem(["job_types", name, *_parts(field)], message)

    def job_modules(self, value: Any, written: Mapping[str, JobType]) -> dict[str, JobType]:
        """The job types declared with ``@jobyard.job`` in the modules listed (imported now)."""
        names = self.module_names(value, "job_modules")
        found: dict[str, tuple[str, JobType]] = {}
        for index, module in enumerate(names):
            try:
                declared, invalid = load_module(module, self.base_dir)
            except DeclarationInvalid as exc:
                self.problem(["job_modules", str(index)], str(exc))
                continue
            for line in invalid:
                self.problem(["job_modules", str(index)], line)
            for item in declared:
                if clash := _clash(item.job_type.name, written, found):
                    self.problem(["job_modules", str(index)], f"{item.target}: {clash}")
                    continue
                for error in user_problems(item.job_type):
                    self.problem(["job_modules", str(index)], f"{item.target}: {error['message']}")
                found[item.job_type.name] = (item.target, self.with_cwd(item.job_type))
                self.declared_by[item.job_type.name] = (index, item.target)
        return {name: job_type for name, (_, job_type) in found.items()}

    def with_cwd(self, job_type: JobType) -> JobType:
        if job_type.cwd is None or os.path.isabs(job_type.cwd):
            return job_type
        cwd = os.path.normpath(self.base_dir / job_type.cwd)
        return job_type.model_copy(update={"cwd": cwd})

    def workflows(
        self,
        raw: Mapping[str, Any],
        job_types: Mapping[str, JobType],
        broken_types: set[str],
        queues: set[str] | None,
    ) -> dict[str, WorkflowSpec]:
        try:
            return parse_workflows(raw, job_types, queues=queues, invalid_types=broken_types)
        except WorkflowInvalid as exc:
            for error in exc.errors:
                self.problem(_parts(error["field"]), error["message"])
            return {}

    def schedules(
        self,
        raw: Mapping[str, Any],
        job_types: Mapping[str, JobType],
        workflows: Mapping[str, WorkflowSpec],
        broken: Mapping[str, set[str]],
    ) -> dict[str, ScheduleSpec]:
        """The schedules; one of a job type or workflow that is in the file but broken is
        not also said to be unknown (nor its args checked)."""
        schedules = {}
        for name, value in raw.items():
            try:
                spec = parse_schedule(name, value)
            except ScheduleInvalid as exc:
                for error in exc.errors:
                    self.problem(["schedules", name, *_parts(error["field"])], error["message"])
                continue
            kind, target = spec.target
            known = job_types if kind == "job_type" else workflows
            if target not in known:
                if target not in broken[kind]:
                    hint = did_you_mean(target, sorted(known))
                    self.problem(["schedules", name, kind], f"unknown {kind} {target!r}{hint}")
                continue
            if kind == "workflow" and _uses_missing(workflows[target], job_types):
                continue  # a node's job type is broken: its own error is said
            problems = _args_problems(spec, job_types, workflows)
            for error in problems:
                self.problem(["schedules", name, "args", *_parts(error["field"])], error["message"])
            if not problems:
                schedules[name] = spec
        return schedules

    def notifications(self, raw: Mapping[str, Any]) -> NotificationConfig:
        try:
            return parse_notifications(
                raw,
                environ=self.environ,
                base_dir=self.base_dir,
                check_secrets=self.environ is not None,
            )
        except NotificationsInvalid as exc:
            for error in exc.errors:
                self.problem(["notifications", *_parts(error["field"])], error["message"])
            return NotificationConfig()

    def preload(self, value: Any) -> tuple[str, ...]:
        return self.module_names(value, "preload")

    def module_names(self, value: Any, key: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem([key], f"must be a list of module names, not {_kind(value)}")
            return ()
        for i, name in enumerate(value):
            if not isinstance(name, str) or not MODULE_RE.fullmatch(name):
                self.problem([key, str(i)], f"{name!r} is not a module name (like pkg.mod)")
        return tuple(name for name in value if isinstance(name, str) and MODULE_RE.fullmatch(name))

    def pass_env(self, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem(["pass_env"], f"must be a list of variable names, not {_kind(value)}")
            return ()
        for i, name in enumerate(value):
            if not isinstance(name, str) or not ENV_NAME_PATTERN.fullmatch(name):
                message = f"{name!r} is not a variable name (like MY_VAR, or AWS_* for a prefix)"
                self.problem(["pass_env", str(i)], message)
        return tuple(name for name in value if isinstance(name, str))

    def retention(self, value: Any) -> RetentionPolicy:
        policy, problems = parse_retention(value)
        for parts, message in problems:
            self.problem(["retention", *parts], message)
        return policy

    def flag(self, data: Mapping[str, Any], key: str, *, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.problem([key], f"must be true or false, not {_kind(value)}")
            return default
        return value

    def origins(self, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem(["cors_origins"], f"must be a list of origins, not {_kind(value)}")
            return ()
        for i, origin in enumerate(value):
            if not isinstance(origin, str) or not ORIGIN_RE.fullmatch(origin):
                message = f"{origin!r} is not an origin like https://app.example.org"
                self.problem(["cors_origins", str(i)], message)
        return tuple(origin for origin in value if isinstance(origin, str))

    def check_rules(
        self,
        notifications: NotificationConfig,
        job_types: set[str],
        workflows: set[str],
        api_job_types: bool,
    ) -> None:
        """The names notification rules narrow to must exist, or the rule is silently dead:
        workflows (all in this file), job types when only this file may define them."""
        for i, rule in enumerate(notifications.rules):
            where = ["notifications", "rules", str(i)]
            for j, name in enumerate(rule.job_types or ()):
                if not api_job_types and name not in job_types:
                    hint = did_you_mean(name, sorted(job_types))
                    self.problem([*where, "job_types", str(j)], f"unknown job type {name!r}{hint}")
            for j, name in enumerate(rule.workflows or ()):
                if name not in workflows:
                    hint = did_you_mean(name, sorted(workflows))
                    self.problem([*where, "workflows", str(j)], f"unknown workflow {name!r}{hint}")
            dead = [event for event in rule.events if event in WORKFLOW_EVENTS]
            if rule.job_types is not None and dead:
                message = (
                    f"a rule with job_types never matches {', '.join(dead)}: "
                    "give the workflow events a rule of their own"
                )
                self.problem([*where, "job_types"], message)

    def check_queues(self, job_types: Mapping[str, JobType], declared: set[str]) -> None:
        for name, job_type in job_types.items():
            for problem in queue_problems(job_type.queue, declared):
                self.type_problem(name, problem["field"], problem["message"])


def _uses_missing(workflow: WorkflowSpec, job_types: Mapping[str, JobType]) -> bool:
    """Whether a node of ``workflow`` runs a job type that is not in ``job_types``."""
    return any(node.type not in job_types for node in workflow.nodes.values())


def _args_problems(
    spec: ScheduleSpec, job_types: Mapping[str, JobType], workflows: Mapping[str, WorkflowSpec]
) -> list[FieldError]:
    """What a fire of ``spec`` would refuse in its ``args`` (fields below ``args``)."""
    kind, target = spec.target
    if kind == "workflow":
        return run_args_problems(workflows[target], job_types.__getitem__, spec.args)
    try:
        job_types[target].validate_args(spec.args)
    except ArgsInvalid as exc:
        return exc.errors
    return []


def _clash(
    name: str, written: Mapping[str, JobType], found: Mapping[str, tuple[str, JobType]]
) -> str | None:
    """Why a declared type may not take ``name`` (None: it may)."""
    if name in written:
        return f"job type {name!r} is also defined under job_types"
    if name in found:
        return f"job type {name!r} is also declared by {found[name][0]}"
    return None


def _on_queue_executor(job_type: JobType, queues: Mapping[str, QueueConfig]) -> JobType:
    """A type that names no executor runs where its queue's jobs run (checked again
    there: :class:`JobTypeInvalid` when it cannot)."""
    queue = queues.get(job_type.queue)
    executor = queue.executor if queue is not None else None
    if job_type.executor is not None or executor is None or job_type.python is not None:
        return job_type
    return with_executor(job_type, executor)


def _parts(dotted: str) -> list[str]:
    return [part for part in dotted.split(".") if part]


def _kind(value: Any) -> str:
    return {
        list: "a list",
        dict: "a mapping",
        str: "a string",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)
