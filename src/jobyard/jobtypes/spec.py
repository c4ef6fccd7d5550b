"""Job types: named, validated templates for jobs.

A job type turns its ``params`` into a JSON Schema (draft 2020-12, see
:mod:`jobyard.jobtypes.params`), checks the arguments of a submission against it, and
resolves them into the frozen :class:`~jobyard.models.JobSpec` a worker runs.
Command arguments are substituted per argv element (:mod:`jobyard.jobtypes.argv`) and
never pass through a shell, so an argument like ``"; rm -rf /"`` stays one
harmless argv element.
"""

from __future__ import annotations

import copy
import pwd
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from jsonschema import Draft202012Validator
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from jobyard.durations import Duration, Size
from jobyard.errors import Invalid
from jobyard.jobtypes.argv import ARG_ENV_PREFIX, ArgTemplate, Command, Placeholder, arg_env
from jobyard.jobtypes.executor import Executor, ExecutorSpec, SlurmSpec
from jobyard.jobtypes.params import (
    FORMAT_CHECKER,
    KNOWN_FORMATS,
    PARAM_NAME,
    SCHEMA_DIALECT,
    ArgsInvalid,
    FieldError,
    Number,
    ParamKind,
    ParamName,
    Params,
    ParamSpec,
    Problems,
    args_errors,
    args_validator,
    build_schema,
    checks_references,
    declares_integers,
    dedupe,
    full_schema_problems,
    model_problems,
    params_form,
    summary,
    whole_numbers,
)
from jobyard.models import Backoff, JobSpec, RestartPolicy, RetryPolicy, Sla
from jobyard.routing import check_tags
from jobyard.spelling import closest, did_you_mean

__all__ = [
    "ARG_ENV_PREFIX",
    "FORMAT_CHECKER",
    "KNOWN_FORMATS",
    "NAME_HINT",
    "NAME_RE",
    "SCHEMA_DIALECT",
    "ArgTemplate",
    "ArgsInvalid",
    "Command",
    "DataBudgetSpec",
    "FieldError",
    "JobType",
    "JobTypeInvalid",
    "Number",
    "ParamKind",
    "ParamName",
    "ParamSpec",
    "Params",
    "Placeholder",
    "RestartBackoffSpec",
    "RetriesSpec",
    "SlaSpec",
    "Source",
    "arg_env",
    "build_schema",
    "check_name",
    "kind_problems",
    "parse_job_type",
    "pydantic_problems",
    "user_problems",
]

Source = Literal["config", "api"]

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
PRIORITY_LIMIT = 1_000_000  # a priority is from -PRIORITY_LIMIT to PRIORITY_LIMIT, anywhere
NAME_HINT = "use 1-100 letters, digits, '_', '.' or '-', starting alphanumeric"
USER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")  # what useradd accepts
_PYTHON_TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def check_name(value: str) -> str:
    """``value`` if it may name a job type or a queue, else a :class:`ValueError`.

    Names go into URL paths (``/queues/{name}/pause``), and MariaDB compares text
    without trailing spaces, so they keep to a plain alphabet.
    """
    if not NAME_RE.fullmatch(value):
        raise ValueError(NAME_HINT)
    return value


class JobTypeInvalid(Invalid):
    """A job type definition with problems; ``errors`` lists every one."""

    def __init__(self, errors: list[FieldError], detail: str = "the job type is invalid") -> None:
        super().__init__(summary(detail, errors), errors)


# -- policies -----------------------------------------------------------------
class RetriesSpec(BaseModel):
    """Automatic retries: ``max`` extra attempts, waiting ``initial`` (doubling if exponential)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max: int = Field(default=0, ge=0, le=1_000_000)  # attempts are counted in 32 bits
    backoff: Backoff = Backoff.EXPONENTIAL
    initial: Duration = 10.0
    max_delay: Duration = 3600.0

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max, self.backoff, self.initial, self.max_delay)


class RestartBackoffSpec(BaseModel):
    """Delay before a restart (``restart: on-failure|always``), doubling up to ``max_delay``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial: Duration = 1.0
    max_delay: Duration = 300.0

    def policy(self) -> RetryPolicy:
        return RetryPolicy(0, Backoff.EXPONENTIAL, self.initial, self.max_delay)


class DataBudgetSpec(BaseModel):
    """A cap on a metric the job reports itself, e.g. ``{metric: rows, limit: 1000000}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Annotated[str, Field(min_length=1, max_length=100)]
    limit: Annotated[float, Field(ge=0)]


class SlaSpec(BaseModel):
    """Budgets watched while a job runs; a breach notifies, and kills with ``on_breach: kill``.

    ``expected: auto`` learns the type's usual runtime (p95 of its recent
    successes) and warns when a run takes more than ``factor`` times that.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_runtime: Annotated[Duration, Field(gt=0)] | None = None
    max_output: Size | None = None
    max_data: DataBudgetSpec | None = None
    on_breach: Literal["notify", "kill"] = "notify"
    expected: Literal["auto"] | None = None
    factor: Annotated[float, Field(gt=1)] = 2.0

    @model_validator(mode="after")
    def _some_budget(self) -> Self:
        if (self.max_runtime, self.max_output, self.max_data, self.expected) == (None,) * 4:
            raise ValueError("give a budget: max_runtime, max_output, max_data or expected: auto")
        return self

    def policy(self) -> Sla:
        data = self.max_data
        return Sla(
            max_runtime=self.max_runtime,
            max_output=None if self.max_output is None else int(self.max_output),
            max_data=None if data is None else (data.metric, data.limit),
            on_breach=self.on_breach,
            expected=self.expected,
            factor=self.factor,
        )


def _env_name(name: str) -> str:
    if not PARAM_NAME.fullmatch(name):
        raise ValueError("not a valid environment variable name")
    return name


# -- job type -----------------------------------------------------------------
@dataclass(frozen=True)
class _Bare:
    """What a submission without arguments (most are) gives: the same errors each time,
    or none, the same completed arguments and the same spec."""

    errors: list[FieldError]
    args: dict[str, Any]
    spec: JobSpec | None  # None: there are errors

    def prepared(self) -> tuple[dict[str, Any], JobSpec]:
        """A copy of the arguments and the spec, or :class:`ArgsInvalid`."""
        if self.spec is None:
            raise ArgsInvalid([dict(error) for error in self.errors])  # a caller may edit them
        return (copy.deepcopy(self.args) if self.args else {}), self.spec


class JobType(BaseModel):
    """A named template for jobs: what to run, its params, queue, limits and retries.

    Build one with :func:`parse_job_type`, which reports every problem at once.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    name: str
    description: str = ""
    command: Command | None = None
    shell: bool = False
    python: str | None = None
    params: Params = Field(default_factory=dict)
    queue: str = "default"
    priority: int = Field(default=0, ge=-PRIORITY_LIMIT, le=PRIORITY_LIMIT)
    timeout: Annotated[Duration, Field(gt=0)] | None = None
    kill_grace: Duration | None = None
    retries: RetriesSpec = Field(default_factory=RetriesSpec)
    restart: RestartPolicy = RestartPolicy.NEVER
    restart_backoff: RestartBackoffSpec | None = None
    sla: SlaSpec | None = None
    env: dict[Annotated[str, AfterValidator(_env_name)], str] = Field(default_factory=dict)
    cwd: str | None = None
    user: str | None = None  # the OS user the job runs as (runner/accounts.py)
    tags: list[str] = Field(default_factory=list)  # a worker needs all of them (routing.py)
    max_running: int | None = Field(default=None, ge=1, le=1_000_000)  # cluster-wide (limits.py)
    executor: Executor = None  # where its jobs run; None: its queue's choice (executor.py)
    source: Source = "config"

    _schema: dict[str, Any] = PrivateAttr(default_factory=dict)
    _validator: Draft202012Validator = PrivateAttr()
    _templates: tuple[ArgTemplate, ...] = PrivateAttr(default=())
    # What every submission of this type needs, worked out once (see _prepare).
    _defaults: dict[str, Any] = PrivateAttr(default_factory=dict)
    _integers: bool = PrivateAttr(default=False)
    _fixed: dict[str, Any] = PrivateAttr(default_factory=dict)
    # Worked out at the first submission without arguments, as each would (one read:
    # reading a private attribute of a model costs microseconds).
    _bare: _Bare | None = PrivateAttr(default=None)

    @field_validator("name", "queue")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("user")
    @classmethod
    def _valid_user(cls, value: str | None) -> str | None:
        if value is not None and not USER_RE.fullmatch(value):
            raise ValueError("not a user name (letters, digits, '_', '.', '-'; at most 32)")
        return value

    @field_validator("tags")
    @classmethod
    def _valid_tags(cls, value: list[str]) -> list[str]:
        return list(check_tags(value))

    @field_validator("python")
    @classmethod
    def _valid_target(cls, value: str | None) -> str | None:
        if value is not None and not _PYTHON_TARGET.fullmatch(value):
            raise ValueError("use module:attribute, e.g. myapp.jobs:resize")
        return value

    @field_validator("retries", mode="before")
    @classmethod
    def _bare_max(cls, value: Any) -> Any:
        return {"max": value} if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Self:
        problems = kind_problems(self.command, self.python, self.shell)
        if self.executor is not None and self.executor.slurm is not None:
            problems += _slurm_problems(self)
        self._schema = build_schema(self.params)
        if params_form(self.params) == "~schema":
            problems += full_schema_problems(self._schema, references=checks_references(info))
        if isinstance(self.command, list):
            self._templates = tuple(ArgTemplate.parse(text) for text in self.command)
            problems += self._placeholder_problems()
        if problems:
            raise Problems(problems)
        self._validator = args_validator(self._schema)
        self._prepare()
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with some fields changed (not ``params``), its prepared parts redone."""
        copied = super().model_copy(update=update, deep=deep)
        copied._prepare()
        return copied

    def _prepare(self) -> None:
        properties = self._schema.get("properties") or {}
        params = {name: sub for name, sub in properties.items() if isinstance(sub, dict)}
        self._defaults = {name: sub["default"] for name, sub in params.items() if "default" in sub}
        self._integers = declares_integers(self._schema)
        self._bare = None
        self._fixed = {
            "cwd": self.cwd,
            "timeout": self.timeout,
            "kill_grace": self.kill_grace,
            "retries": self.retries.policy(),
            "restart": self.restart,
            "restart_backoff": (self.restart_backoff or RestartBackoffSpec()).policy(),
            "sla": None if self.sla is None else self.sla.policy(),
            "tags": tuple(self.tags),
            "user": self.user,
            "executor": None if self.executor is None else self.executor.to_spec(),
        }

    def _placeholder_problems(self) -> list[FieldError]:
        known = self._schema.get("properties") or {}
        return [
            {"field": f"command.{index}", "message": f"placeholder {{{name}}} names no param"}
            for index, template in enumerate(self._templates)
            for name in template.names
            if name not in known
        ]

    # -- using a type ----------------------------------------------------------
    @property
    def kind(self) -> str:
        return "python" if self.python else "command"

    def json_schema(self) -> dict[str, Any]:
        """The arguments' JSON Schema (draft 2020-12), defaults and descriptions included."""
        return copy.deepcopy(self._schema)

    def declared_params(self) -> frozenset[str]:
        """The names of its params: the only workflow and run args that reach a node of it."""
        return frozenset(self._schema.get("properties") or {})

    def defaults(self) -> dict[str, Any]:
        return copy.deepcopy(self._defaults)

    def validate_args(self, args: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check ``args`` against the schema (formats too) and fill in defaults.

        Raises :class:`ArgsInvalid` naming every bad, missing or unknown field.
        """
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise ArgsInvalid([{"field": "", "message": "the arguments must be an object"}])
        if not args:
            return self._bare_submission().prepared()[0]
        data = copy.deepcopy(dict(args))
        errors = args_errors(self._validator, data)
        if errors:
            raise ArgsInvalid(errors)
        return self._complete(data)

    def prepare(self, args: Mapping[str, Any] | None) -> tuple[dict[str, Any], JobSpec]:
        """``args`` checked and completed (:meth:`validate_args`) and the job's spec
        (:meth:`resolve`); without arguments, the spec every such job shares."""
        if args is None or (isinstance(args, Mapping) and not args):
            return self._bare_submission().prepared()
        checked = self.validate_args(args)
        return checked, self.resolve(checked)

    def _bare_submission(self) -> _Bare:
        bare = self._bare
        if bare is None:
            errors = args_errors(self._validator, {})
            args = {} if errors else self._complete({})
            spec = None if errors else self.resolve(args)
            self._bare = bare = _Bare(errors, args, spec)
        return bare

    def _complete(self, data: dict[str, Any]) -> dict[str, Any]:
        for name, value in self._defaults.items():
            if name not in data:
                data[name] = copy.deepcopy(value)
        return whole_numbers(self._schema, data) if self._integers else data

    def resolve(self, args: Mapping[str, Any]) -> JobSpec:
        """The frozen spec of a job with ``args`` (as returned by :meth:`validate_args`)."""
        env = {**self.env, **arg_env(args)}
        if self.python:
            return self._spec(env, python=self.python, args=dict(args))
        if self.shell:
            return self._spec(env, argv=["/bin/sh", "-c", str(self.command)], shell=True)
        return self._spec(env, argv=[part for t in self._templates for part in t.render(args)])

    def _spec(
        self,
        env: dict[str, str],
        *,
        argv: list[str] | None = None,
        python: str | None = None,
        args: dict[str, Any] | None = None,
        shell: bool = False,
    ) -> JobSpec:
        return JobSpec(
            argv=argv, python=python, args=args or {}, shell=shell, env=env, **self._fixed
        )

    def public_dict(self) -> dict[str, Any]:
        """What the API shows of this type."""
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "command": self.command,
            "python": self.python,
            "shell": self.shell,
            "params": self.json_schema(),
            "defaults": self.defaults(),
            "queue": self.queue,
            "priority": self.priority,
            "timeout": self.timeout,
            "kill_grace": self.kill_grace,
            "retries": self.retries.policy().to_dict(),
            "restart": self.restart.value,
            "sla": self.sla.policy().to_dict() if self.sla else None,
            "tags": self.tags,
            "user": self.user,
            "max_running": self.max_running,
            "executor": None if self.executor is None else self.executor.to_spec(),
            "source": self.source,
        }


def kind_problems(command: Any, python: Any, shell: Any) -> list[FieldError]:
    """What is wrong with how a type says what to run (command, shell, python)."""
    if command is not None and python is not None:
        return [{"field": "command", "message": "give either command or python, not both"}]
    if command is None and python is None:
        message = "give command (a program and its arguments) or python (module:function)"
        return [{"field": "command", "message": message}]
    if python is not None:
        return [{"field": "shell", "message": "applies to commands only"}] if shell else []
    if not command:
        return [{"field": "command", "message": "must not be empty"}]
    if shell and not isinstance(command, str):
        return [{"field": "command", "message": "with shell: true, give one script string"}]
    if not shell and isinstance(command, str):
        message = "give a list of arguments, e.g. [prog, --flag, '{param}'] (or set shell: true)"
        return [{"field": "command", "message": message}]
    return []


def _slurm_problems(job_type: JobType) -> list[FieldError]:
    """What a Slurm job cannot do: run Python on a pool child, switch to another user."""
    problems: list[FieldError] = []
    if job_type.python is not None:
        message = "a Slurm job runs a command; a Python job type runs on the worker's host"
        problems.append({"field": "executor", "message": message})
    if job_type.user is not None:
        message = "a Slurm job runs as the worker's user (give Slurm's own options instead)"
        problems.append({"field": "user", "message": message})
    return problems


def queue_problems(queue: str, declared: Collection[str] | None) -> list[FieldError]:
    """Whether ``queue`` (a type's, a workflow node's, a submitted job's) is one the
    configuration declares (``None``: any is)."""
    if declared is None or queue in declared:
        return []
    known = sorted(declared)
    hint = did_you_mean(queue, known, f"; known: {', '.join(known)}" if known else "")
    message = f"queue {queue!r} is not declared under queues{hint}"
    return [{"field": "queue", "message": message}]


def user_problems(job_type: JobType) -> list[FieldError]:
    """Whether the type's ``user`` exists on this host (a worker looks again at each start)."""
    if job_type.user is None:
        return []
    try:
        pwd.getpwnam(job_type.user)
    except KeyError:
        return [{"field": "user", "message": f"no user {job_type.user!r} on this host"}]
    return []


# -- definitions ------------------------------------------------------------------
_MODELS = (
    JobType,
    ParamSpec,
    RetriesSpec,
    RestartBackoffSpec,
    SlaSpec,
    DataBudgetSpec,
    ExecutorSpec,
    SlurmSpec,
)
_KNOWN_KEYS = sorted({key for model in _MODELS for key in model.model_fields})
_SLURM_ONLY = frozenset(SlurmSpec.model_fields) - frozenset(JobType.model_fields)


def parse_job_type(
    name: str, data: Any, *, source: Source | None = None, stored: bool = False
) -> JobType:
    """Build the job type ``name`` from its definition (a YAML mapping or a JSON body).

    Raises :class:`JobTypeInvalid` listing every problem with its field path,
    e.g. ``params.limit.minimum``. ``source`` overrides a ``source`` in ``data``.
    A ``stored`` type (read from the store) is not refused for what it was not
    checked for when written: its references.
    """
    if not isinstance(data, Mapping):
        message = "a job type is a mapping of keys (command or python, params, queue, …)"
        raise JobTypeInvalid([{"field": "", "message": message}])
    values = {**data, "name": name}
    if source is not None:
        values["source"] = source
    problems: list[FieldError] = []
    if "name" in data and data["name"] != name:
        problems.append({"field": "name", "message": f"does not match the type's name {name!r}"})
    try:
        job_type = JobType.model_validate(values, context={"stored": stored})
    except ValidationError as exc:
        problems += pydantic_problems(exc)
        # Some field failed, so the whole-type checks did not run; a key misspelt for
        # command or python was said with its did-you-mean: its absence is no news.
        if any(error["loc"] for error in exc.errors()) and not _misspelt_kind(data):
            problems += kind_problems(data.get("command"), data.get("python"), data.get("shell"))
    if problems:
        raise JobTypeInvalid(dedupe(problems))
    return job_type


def _misspelt_kind(data: Mapping[str, Any]) -> bool:
    """Whether neither command nor python is given, but an unknown key is close to one."""
    if data.get("command") is not None or data.get("python") is not None:
        return False
    unknown = [str(key) for key in data if key not in _KNOWN_KEYS]
    return any(closest(key, _KNOWN_KEYS) in ("command", "python") for key in unknown)


def with_executor(job_type: JobType, executor: ExecutorSpec) -> JobType:
    """``job_type`` running on ``executor`` (its queue's), checked again as a whole: what
    the type may not do there (a ``user`` on Slurm) is refused as if it named it itself.

    Raises :class:`JobTypeInvalid` as :func:`parse_job_type` does.
    """
    try:
        return JobType.model_validate({**dict(job_type), "executor": executor})
    except ValidationError as exc:
        raise JobTypeInvalid(dedupe(pydantic_problems(exc))) from None


def pydantic_problems(exc: ValidationError) -> list[FieldError]:
    """``exc`` as field problems: dotted paths, plain messages."""
    return [_placed(problem) for problem in model_problems(exc, _KNOWN_KEYS)]


def _placed(problem: FieldError) -> FieldError:
    """An option of Slurm's written at the type's top level: say where it belongs."""
    field = problem["field"]
    if field in _SLURM_ONLY and problem["message"].startswith("unknown key"):
        where = f"executor: {{slurm: {{{field}: …}}}}"
        message = f"unknown key here; it belongs under executor.slurm ({where})"
        return {**problem, "message": message}
    return problem
