"""Job types: named, validated templates for jobs.

A job type turns its ``params`` into a JSON Schema (draft 2020-12), checks the
arguments of a submission against it, and resolves them into the frozen
:class:`~jobyard.models.JobSpec` a worker runs. Command arguments are
substituted per argv element and never pass through a shell, so an argument
like ``"; rm -rf /"`` stays one harmless argv element.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaViolation
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from jobyard.durations import Duration, Size
from jobyard.errors import Invalid
from jobyard.models import Backoff, JobSpec, RestartPolicy, RetryPolicy

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ARG_ENV_PREFIX = "JOBYARD_ARG_"
Source = Literal["config", "api"]
FieldError = dict[str, str]

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYTHON_TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_TOKEN = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]|[^{}]+")
_META = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)


# -- errors -------------------------------------------------------------------
class JobTypeInvalid(Invalid):
    """A job type definition with problems; ``errors`` lists every one."""

    def __init__(self, errors: list[FieldError], detail: str = "the job type is invalid") -> None:
        super().__init__(_summary(detail, errors), errors)


class ArgsInvalid(Invalid):
    """Job arguments that do not match the type's params; ``errors`` names every bad field."""

    def __init__(
        self, errors: list[FieldError], detail: str = "the job arguments are invalid"
    ) -> None:
        super().__init__(_summary(detail, errors), errors)


class _Problems(ValueError):
    """Raised inside validators; carries field-level problems out through pydantic."""

    def __init__(self, problems: list[FieldError]) -> None:
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))
        self.problems = problems


def _summary(detail: str, errors: list[FieldError]) -> str:
    return f"{detail}: " + "; ".join(f"{e['field'] or '(top)'}: {e['message']}" for e in errors)


def _join(*parts: object) -> str:
    return ".".join(str(part) for part in parts if part != "")


def _dedupe(problems: Iterable[FieldError]) -> list[FieldError]:
    return list({(p["field"], p["message"]): p for p in problems}.values())


# -- formats ------------------------------------------------------------------
# jsonschema checks date-time and uri only with optional packages: check them here
FORMAT_CHECKER = FormatChecker()
_OFFSET = r"([Zz]|[+-]\d{2}:\d{2})"
_FORMATS: dict[str, tuple[str, Callable[[str], object]]] = {
    "date-time": (
        rf"\d{{4}}-\d{{2}}-\d{{2}}[Tt ]\d{{2}}:\d{{2}}:\d{{2}}(\.\d+)?{_OFFSET}",
        lambda v: datetime.fromisoformat(v.upper().replace("Z", "+00:00")),
    ),
    "time": (
        rf"\d{{2}}:\d{{2}}:\d{{2}}(\.\d+)?{_OFFSET}",
        lambda v: time.fromisoformat(v.upper().replace("Z", "+00:00")),
    ),
    "uri": (r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]*", urlsplit),
    "uri-reference": (r"[^\s<>\"{}|\\^`]*", urlsplit),
    "email": (r"[^@\s]+@[^@\s]+", str),
}


def _format_check(pattern: str, parse: Callable[[str], object]) -> Callable[[object], bool]:
    regex = re.compile(pattern)

    def check(value: object) -> bool:
        if not isinstance(value, str):
            return True  # formats constrain strings only
        parse(value)  # raises ValueError on e.g. 2026-02-30T00:00:00Z
        return regex.fullmatch(value) is not None

    return check


for _format, (_pattern, _parse) in _FORMATS.items():
    FORMAT_CHECKER.checks(_format, raises=ValueError)(_format_check(_pattern, _parse))
KNOWN_FORMATS = tuple(sorted(FORMAT_CHECKER.checkers))


# -- argv templates -----------------------------------------------------------
@dataclass(frozen=True)
class Placeholder:
    name: str


@dataclass(frozen=True)
class ArgTemplate:
    """One argv element: literal text and ``{name}`` placeholders."""

    segments: tuple[str | Placeholder, ...]

    @classmethod
    def parse(cls, text: str) -> ArgTemplate:
        """Parse ``text``; ``{{``/``}}`` are literal braces; only a bare ``{name}`` is allowed.

        Unlike :meth:`str.format`, there is no attribute or index access
        (``{x.__class__}``, ``{x[0]}``) and no conversion or format spec.
        """
        segments: list[str | Placeholder] = []
        for token in _TOKEN.findall(text):
            if token in ("{{", "}}"):
                segments.append(token[0])
            elif token in ("{", "}"):
                raise ValueError(f"unmatched {token!r} (write {token * 2!r} for a literal brace)")
            elif token.startswith("{"):
                segments.append(_placeholder(token))
            else:
                segments.append(token)
        return cls(tuple(segments))

    @property
    def names(self) -> list[str]:
        return [seg.name for seg in self.segments if isinstance(seg, Placeholder)]

    def render(self, args: Mapping[str, Any]) -> list[str]:
        """The argv elements: an element that is exactly ``{name}`` may give none or several."""
        if len(self.segments) == 1 and isinstance(self.segments[0], Placeholder):
            value = args.get(self.segments[0].name)
            if value is None:
                return []
            return [_text(item) for item in value] if isinstance(value, list) else [_text(value)]
        return ["".join(_segment_text(seg, args) for seg in self.segments)]


def _placeholder(token: str) -> Placeholder:
    if not _PARAM_NAME.fullmatch(token[1:-1]):
        raise ValueError(
            f"invalid placeholder {token!r}: write {{name}} with a param name only "
            "(no attribute, index, conversion or format spec)"
        )
    return Placeholder(token[1:-1])


def _segment_text(segment: str | Placeholder, args: Mapping[str, Any]) -> str:
    if isinstance(segment, str):
        return segment
    value = args.get(segment.name)
    if isinstance(value, list) and not any(isinstance(v, list | dict) for v in value):
        return ",".join(_text(item) for item in value)
    return _text(value)


def _text(value: Any) -> str:
    """A value as one argv element or environment value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def arg_env(args: Mapping[str, Any]) -> dict[str, str]:
    """Arguments as ``JOBYARD_ARG_<NAME>`` variables (lists and objects as JSON)."""
    prefix = ARG_ENV_PREFIX
    return {f"{prefix}{name.upper()}": _text(v) for name, v in args.items() if v is not None}


def _valid_template(text: str) -> str:
    ArgTemplate.parse(text)
    return text


def _command_form(value: Any) -> str:
    return "~script" if isinstance(value, str) else "~argv"


Command = Annotated[
    Annotated[list[Annotated[str, AfterValidator(_valid_template)]], Tag("~argv")]
    | Annotated[str, Tag("~script")],
    Discriminator(_command_form),
]


# -- params -------------------------------------------------------------------
def _integral(value: float) -> float:
    # keep ``minimum: 1`` an int so messages read "minimum of 1", not "of 1.0"
    return int(value) if float(value).is_integer() else value


def _param_name(name: str) -> str:
    if not _PARAM_NAME.fullmatch(name):
        raise ValueError("a param name is letters, digits and '_', not starting with a digit")
    return name


Number = Annotated[float, Field(strict=True), AfterValidator(_integral)]
ParamName = Annotated[str, AfterValidator(_param_name)]
ParamKind = Literal["string", "integer", "number", "boolean", "array", "object"]
_NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_APPLIES = {
    **dict.fromkeys(_NUMERIC, ("integer", "number")),
    **dict.fromkeys(("minLength", "maxLength", "pattern", "format"), ("string",)),
    "items": ("array",),
}


class ParamSpec(BaseModel):
    """One parameter: a small JSON Schema plus ``required``. A bare string is its type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ParamKind = "string"
    format: str | None = None
    required: bool = False
    default: Any = None
    minimum: Number | None = None
    maximum: Number | None = None
    exclusiveMinimum: Number | None = None
    exclusiveMaximum: Number | None = None
    minLength: int | None = Field(default=None, ge=0)
    maxLength: int | None = Field(default=None, ge=0)
    pattern: str | None = None
    enum: list[Any] | None = Field(default=None, min_length=1)
    items: dict[str, Any] | None = None
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_type(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        if value is not None and value not in KNOWN_FORMATS:
            raise ValueError(f"unknown format {value!r}; known: {', '.join(KNOWN_FORMATS)}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        problems = [
            {"field": key, "message": f"applies to {' or '.join(kinds)} params, not {self.type}"}
            for key, kinds in _APPLIES.items()
            if key in self.model_fields_set and self.type not in kinds
        ]
        if self.required and "default" in self.model_fields_set:
            problems.append({"field": "default", "message": "a required param has no default"})
        problems = problems or _schema_problems(self.to_schema(), [()])
        if problems:
            raise _Problems(problems)
        return self

    def to_schema(self) -> dict[str, Any]:
        """This param as a JSON Schema (``required`` belongs to the parent object)."""
        return self.model_dump(include=(self.model_fields_set | {"type"}) - {"required"})


def _params_form(value: Any) -> str:
    # a full JSON Schema has a string ``type``; a mapping of params has mappings
    if isinstance(value, Mapping) and isinstance(value.get("type"), str):
        return "~schema"
    return "~specs"


Params = Annotated[
    Annotated[dict[ParamName, ParamSpec], Tag("~specs")]
    | Annotated[dict[str, Any], Tag("~schema")],
    Discriminator(_params_form),
]


def build_schema(params: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments' JSON Schema for ``params`` (param specs or a full schema)."""
    if _params_form(params) == "~schema":
        schema = {"$schema": SCHEMA_DIALECT, **copy.deepcopy(dict(params))}
        schema.setdefault("additionalProperties", False)
        return schema
    specs = {name: spec for name, spec in params.items() if isinstance(spec, ParamSpec)}
    return {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": {name: spec.to_schema() for name, spec in specs.items()},
        "required": [name for name, spec in specs.items() if spec.required],
        "additionalProperties": False,
    }


def _schema_problems(
    schema: dict[str, Any], defaults_at: list[tuple[str, ...]]
) -> list[FieldError]:
    """``schema`` against the meta-schema, then the defaults at the paths ``defaults_at``."""
    problems = [
        {"field": _join(*error.absolute_path), "message": error.message}
        for error in _META.iter_errors(schema)
    ]
    if problems:
        return problems
    root = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
    for path in defaults_at:
        sub: Any = schema
        for key in path:
            sub = sub[key]
        if isinstance(sub, dict) and "default" in sub:
            problems += [
                {"field": _join(*path, "default"), "message": error.message}
                for error in root.evolve(schema=sub).iter_errors(sub["default"])
            ]
    return problems


def _full_schema_problems(schema: dict[str, Any]) -> list[FieldError]:
    properties = schema.get("properties")
    names = list(properties) if isinstance(properties, dict) else []
    problems = [
        {"field": _join("properties", name), "message": "not a valid param name"}
        for name in names
        if not _PARAM_NAME.fullmatch(name)
    ]
    problems += _schema_problems(schema, [("properties", name) for name in names])
    return [{**p, "field": _join("params", p["field"])} for p in problems]


# -- policies -----------------------------------------------------------------
class RetriesSpec(BaseModel):
    """Automatic retries: ``max`` extra attempts, waiting ``initial`` (doubling if exponential)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max: int = Field(default=0, ge=0)
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


class SlaSpec(BaseModel):
    """Budgets watched while a job runs; a breach notifies (and kills when ``kill``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_runtime: Annotated[Duration, Field(gt=0)] | None = None
    max_output: Size | None = None
    kill: bool = False


def _env_name(name: str) -> str:
    if not _PARAM_NAME.fullmatch(name):
        raise ValueError("not a valid environment variable name")
    return name


# -- job type -----------------------------------------------------------------
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
    priority: int = 0
    timeout: Annotated[Duration, Field(gt=0)] | None = None
    kill_grace: Duration | None = None
    retries: RetriesSpec = Field(default_factory=RetriesSpec)
    restart: RestartPolicy = RestartPolicy.NEVER
    restart_backoff: RestartBackoffSpec | None = None
    sla: SlaSpec | None = None
    env: dict[Annotated[str, AfterValidator(_env_name)], str] = Field(default_factory=dict)
    cwd: str | None = None
    source: Source = "config"

    _schema: dict[str, Any] = PrivateAttr(default_factory=dict)
    _validator: Draft202012Validator = PrivateAttr()
    _templates: tuple[ArgTemplate, ...] = PrivateAttr(default=())

    @field_validator("name", "queue")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_RE.fullmatch(value):
            raise ValueError("use 1-100 letters, digits, '_', '.' or '-', starting alphanumeric")
        return value

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
    def _check(self) -> Self:
        problems = kind_problems(self.command, self.python, self.shell)
        self._schema = build_schema(self.params)
        if _params_form(self.params) == "~schema":
            problems += _full_schema_problems(self._schema)
        if isinstance(self.command, list):
            self._templates = tuple(ArgTemplate.parse(text) for text in self.command)
            problems += self._placeholder_problems()
        if problems:
            raise _Problems(problems)
        self._validator = Draft202012Validator(self._schema, format_checker=FORMAT_CHECKER)
        return self

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

    def defaults(self) -> dict[str, Any]:
        properties = self._schema.get("properties") or {}
        return {
            name: copy.deepcopy(sub["default"])
            for name, sub in properties.items()
            if isinstance(sub, dict) and "default" in sub
        }

    def validate_args(self, args: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check ``args`` against the schema (formats too) and fill in defaults.

        Raises :class:`ArgsInvalid` naming every bad, missing or unknown field.
        """
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise ArgsInvalid([{"field": "", "message": "the arguments must be an object"}])
        data = copy.deepcopy(dict(args))
        errors = _dedupe(p for error in self._validator.iter_errors(data) for p in _describe(error))
        if errors:
            raise ArgsInvalid(errors)
        return self._complete(data)

    def _complete(self, data: dict[str, Any]) -> dict[str, Any]:
        properties = self._schema.get("properties") or {}
        for name, value in self.defaults().items():
            data.setdefault(name, value)
        for name, value in data.items():
            sub = properties.get(name)
            if isinstance(sub, dict) and sub.get("type") == "integer" and isinstance(value, float):
                data[name] = int(value)  # 5.0 is an integer to JSON Schema; pass it as 5
        return data

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
            argv=argv,
            python=python,
            args=args or {},
            shell=shell,
            env=env,
            cwd=self.cwd,
            timeout=self.timeout,
            kill_grace=self.kill_grace,
            retries=self.retries.policy(),
            restart=self.restart,
            restart_backoff=(self.restart_backoff or RestartBackoffSpec()).policy(),
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
            "sla": self.sla.model_dump() if self.sla else None,
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


# -- argument errors ------------------------------------------------------------
def _describe(error: SchemaViolation) -> Iterator[FieldError]:
    base = _join(*error.absolute_path)
    what = "param" if base == "" else "property"
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required" and isinstance(error.validator_value, list):
        for name in error.validator_value:
            if name not in instance:
                yield {"field": _join(base, name), "message": f"required {what} is missing"}
    elif error.validator == "additionalProperties" and isinstance(error.schema, dict):
        known = list(error.schema.get("properties") or {})
        patterns = list(error.schema.get("patternProperties") or {})
        for name in instance:
            if name not in known and not any(re.search(p, name) for p in patterns):
                yield {"field": _join(base, name), "message": f"unknown {what}{_hint(name, known)}"}
    else:
        yield {"field": base, "message": error.message}


def _hint(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; known: {', '.join(known)}" if known else ""


# -- definitions ------------------------------------------------------------------
_MODELS = (JobType, ParamSpec, RetriesSpec, RestartBackoffSpec, SlaSpec)
_KNOWN_KEYS = sorted({key for model in _MODELS for key in model.model_fields})


def parse_job_type(name: str, data: Any, *, source: Source | None = None) -> JobType:
    """Build the job type ``name`` from its definition (a YAML mapping or a JSON body).

    Raises :class:`JobTypeInvalid` listing every problem with its field path,
    e.g. ``params.limit.minimum``. ``source`` overrides a ``source`` in ``data``.
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
        job_type = JobType.model_validate(values)
    except ValidationError as exc:
        problems += pydantic_problems(exc)
        if any(error["loc"] for error in exc.errors()):  # so the whole-type checks did not run
            problems += kind_problems(data.get("command"), data.get("python"), data.get("shell"))
    if problems:
        raise JobTypeInvalid(_dedupe(problems))
    return job_type


def pydantic_problems(exc: ValidationError) -> list[FieldError]:
    """``exc`` as field problems: dotted paths, plain messages."""
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if not str(part).startswith(("~", "[key]"))]
        inner = (error.get("ctx") or {}).get("error")
        if isinstance(inner, _Problems):
            problems += [{**p, "field": _join(*loc, p["field"])} for p in inner.problems]
        else:
            problems.append({"field": _join(*loc), "message": _message(error, loc)})
    return problems


def _message(error: Any, loc: list[str]) -> str:
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(loc[-1], _KNOWN_KEYS, n=1) if loc else []
        return f"unknown key; did you mean {close[0]!r}?" if close else "unknown key"
    if error["type"] == "missing":
        return "is required"
    message: str = error["msg"]
    return message.removeprefix("Value error, ")
