"""Job type params: their JSON Schema, format checks and argument errors.

A type's ``params`` are either a mapping of small :class:`ParamSpec` entries or
a full JSON Schema (draft 2020-12); :func:`build_schema` turns either into the
schema a submission's arguments are checked against, and :func:`args_errors`
reports every bad, missing or unknown field of those arguments.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from jobyard.errors import Invalid
from jobyard.jobtypes.violations import json_message
from jobyard.spelling import did_you_mean

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
FieldError = dict[str, str]

PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_META = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)
# Where a schema's references are looked up: in the schema itself (and the dialects'
# own meta-schemas), never fetched from a URL.
LOCAL_ONLY: Registry[Any] = Registry()
# Keys whose values are data, not schemas: a "$ref" in them is not a reference.
_DATA_KEYS = frozenset({"const", "default", "enum", "examples"})
# What checking against a schema whose references could not be checked may raise.
_UNCHECKABLE = (Unresolvable, RecursionError, LookupError, TypeError, AttributeError)


# -- errors -------------------------------------------------------------------
class ArgsInvalid(Invalid):
    """Job arguments that do not match the type's params; ``errors`` names every bad field."""

    def __init__(
        self, errors: list[FieldError], detail: str = "the job arguments are invalid"
    ) -> None:
        super().__init__(summary(detail, errors), errors)

    def under_args(self, detail: str) -> Invalid:
        """The same problems as fields of a request's ``args`` (``args.limit``)."""
        fields = [{**e, "field": f"args.{e['field']}".rstrip(".")} for e in self.errors]
        return Invalid(detail, fields)


class Problems(ValueError):
    """Raised inside validators; carries field-level problems out through pydantic."""

    def __init__(self, problems: list[FieldError]) -> None:
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))
        self.problems = problems


def summary(detail: str, errors: list[FieldError]) -> str:
    """``detail`` followed by every error, for an exception's message."""
    return f"{detail}: " + "; ".join(f"{e['field'] or '(top)'}: {e['message']}" for e in errors)


def join_path(*parts: object) -> str:
    """A dotted field path, skipping empty parts: ``params.limit.minimum``."""
    return ".".join(str(part) for part in parts if part != "")


def dedupe(problems: Iterable[FieldError]) -> list[FieldError]:
    """``problems`` without repeats of the same field and message, in order."""
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


# -- params -------------------------------------------------------------------
def _integral(value: float) -> float:
    # keep ``minimum: 1`` an int so messages read "minimum of 1", not "of 1.0"
    return int(value) if float(value).is_integer() else value


def is_integer_schema(schema: Mapping[str, Any]) -> bool:
    """Whether ``schema`` takes integers and no other numbers (``integer``, maybe ``null``)."""
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    return "integer" in kinds and "number" not in kinds


def whole_numbers(schema: Any, value: Any) -> Any:
    """``value`` with each float its ``schema`` declares an integer made an int, at any
    depth of ``properties``, ``additionalProperties``, ``items`` and ``prefixItems``: 5.0
    is an integer to JSON Schema, and a job is to get 5. Other values are kept as they are
    (a ``$ref`` or ``oneOf`` is not followed)."""
    if not isinstance(schema, Mapping):
        return value
    if isinstance(value, float):
        return int(value) if is_integer_schema(schema) and value.is_integer() else value
    if isinstance(value, dict):
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        others = schema.get("additionalProperties")
        for key, item in value.items():
            value[key] = whole_numbers(properties.get(key, others), item)
    elif isinstance(value, list):
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = schema.get("items")
        for index, item in enumerate(value):
            value[index] = whole_numbers(prefix[index] if index < len(prefix) else items, item)
    return value


def declares_integers(schema: Any) -> bool:
    """Whether an ``integer`` type appears anywhere in ``schema``."""
    if isinstance(schema, Mapping):
        return is_integer_schema(schema) or any(declares_integers(v) for v in schema.values())
    if isinstance(schema, list):
        return any(declares_integers(v) for v in schema)
    return False


def _param_name(name: str) -> str:
    if not PARAM_NAME.fullmatch(name):
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
    nullable: bool = False
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
    def _coherent(self, info: ValidationInfo) -> Self:
        problems = [
            {"field": key, "message": f"applies to {' or '.join(kinds)} params, not {self.type}"}
            for key, kinds in _APPLIES.items()
            if key in self.model_fields_set and self.type not in kinds
        ]
        if self.required and "default" in self.model_fields_set:
            problems.append({"field": "default", "message": "a required param has no default"})
        references = checks_references(info)
        problems = problems or _schema_problems(self.to_schema(), [()], references=references)
        if problems:
            raise Problems(problems)
        return self

    def to_schema(self) -> dict[str, Any]:
        """This param as a JSON Schema (``required`` belongs to the parent object); a
        ``nullable`` one takes ``null`` too."""
        given = (self.model_fields_set | {"type"}) - {"required", "nullable"}
        schema = self.model_dump(include=given)
        if self.nullable:
            schema["type"] = [self.type, "null"]
            if self.enum is not None and None not in self.enum:
                schema["enum"] = [*self.enum, None]
        return schema


def params_form(value: Any) -> str:
    """``"~schema"`` for a full JSON Schema, ``"~specs"`` for a mapping of param specs."""
    # a full JSON Schema has a string ``type``; a mapping of params has mappings
    if isinstance(value, Mapping) and isinstance(value.get("type"), str):
        return "~schema"
    return "~specs"


Params = Annotated[
    Annotated[dict[ParamName, ParamSpec], Tag("~specs")]
    | Annotated[dict[str, Any], Tag("~schema")],
    Discriminator(params_form),
]


def build_schema(params: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments' JSON Schema for ``params`` (param specs or a full schema)."""
    if params_form(params) == "~schema":
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
    schema: dict[str, Any], defaults_at: list[tuple[str, ...]], *, references: bool = True
) -> list[FieldError]:
    """``schema`` against the meta-schema, its references (unless not ``references``: a
    type stored before they were checked is read as it is), then the defaults at the
    paths ``defaults_at``."""
    problems = [
        {"field": join_path(*error.absolute_path), "message": json_message(error)}
        for error in _META.iter_errors(schema)
    ]
    if references:
        problems = problems or _reference_problems(schema)
    if problems:
        return problems
    root = args_validator(schema)
    for path in defaults_at:
        sub: Any = schema
        for key in path:
            sub = sub[key]
        if isinstance(sub, dict) and "default" in sub:
            problems += [
                {"field": join_path(*path, "default"), "message": json_message(error)}
                for error in root.evolve(schema=sub).iter_errors(sub["default"])
            ]
    return problems


def checks_references(info: ValidationInfo) -> bool:
    """Whether a type being validated has its references checked: not one read from the
    store (``context={"stored": True}``), which was checked when it was written."""
    return not (isinstance(info.context, dict) and info.context.get("stored"))


def args_validator(schema: dict[str, Any]) -> Draft202012Validator:
    """The validator of a type's arguments, which looks up references only in ``schema``."""
    return Draft202012Validator(schema, format_checker=FORMAT_CHECKER, registry=LOCAL_ONLY)


def _reference_problems(schema: dict[str, Any]) -> list[FieldError]:
    """Each ``$ref`` of ``schema`` that does not point at a schema within it (one to a URL
    would be fetched at each submission, one to nowhere fails each), then whether the
    references loop (a recursive schema) or expand past ``EXPANDED_LIMIT`` schemas (a
    few lines of ``allOf`` may double at each level): checking arguments would never
    end, or take minutes of the server's CPU."""
    resolver = LOCAL_ONLY.resolver_with_root(DRAFT202012.create_resource(schema))
    problems = []
    for path, ref in _references(schema, ()):
        message = None
        if not ref.startswith("#"):
            message = "only references within the schema (#/$defs/…) are allowed"
        else:
            try:
                target = resolver.lookup(ref).contents
            except (Unresolvable, ValueError, LookupError, TypeError):
                message = f"{ref!r} does not resolve within the schema"
            else:
                if not isinstance(target, dict | bool):
                    message = f"{ref!r} does not point at a schema"
        if message is not None:
            problems.append({"field": join_path(*path), "message": message})
    if problems:
        return problems
    try:
        _Expansion(resolver).size(schema, frozenset())
    except _Cycle as cycle:
        return [
            {
                "field": "",
                "message": f"references loop through {cycle.ref!r}: "
                "recursive schemas are not supported in params",
            }
        ]
    except (_TooLarge, RecursionError):
        message = f"its references expand to more than {EXPANDED_LIMIT} schemas"
        return [{"field": "", "message": message}]
    return []


EXPANDED_LIMIT = 10_000


class _Cycle(Exception):
    def __init__(self, ref: str) -> None:
        self.ref = ref


class _TooLarge(Exception):
    pass


class _Expansion:
    """The size of a schema with its references written out, each counted once per use."""

    def __init__(self, resolver: Any) -> None:
        self._resolver = resolver
        self._sizes: dict[str, int] = {}

    def size(self, node: Any, stack: frozenset[str]) -> int:
        if isinstance(node, list):
            return sum(self.size(item, stack) for item in node)
        if not isinstance(node, dict):
            return 0
        total = 1
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                total += self._ref(value, stack)
            elif key not in _DATA_KEYS:
                total += self.size(value, stack)
            if total > EXPANDED_LIMIT:
                raise _TooLarge
        return total

    def _ref(self, ref: str, stack: frozenset[str]) -> int:
        if ref in stack:
            raise _Cycle(ref)
        if ref not in self._sizes:
            target = self._resolver.lookup(ref).contents
            self._sizes[ref] = self.size(target, stack | {ref})
        return self._sizes[ref]


def _references(node: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield (*path, key), value
            elif key not in _DATA_KEYS:
                yield from _references(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _references(value, (*path, index))


def full_schema_problems(schema: dict[str, Any], *, references: bool = True) -> list[FieldError]:
    """What is wrong with a full-schema ``params``: param names, the schema, its defaults."""
    properties = schema.get("properties")
    names = list(properties) if isinstance(properties, dict) else []
    problems = [
        {"field": join_path("properties", name), "message": "not a valid param name"}
        for name in names
        if not PARAM_NAME.fullmatch(name)
    ]
    defaults: list[tuple[str, ...]] = [("properties", name) for name in names]
    try:
        problems += _schema_problems(schema, defaults, references=references)
    except _UNCHECKABLE as exc:
        problems.append({"field": "", "message": f"cannot be checked: {exc}"})
    return [{**p, "field": join_path("params", p["field"])} for p in problems]


# -- argument errors ------------------------------------------------------------
def args_errors(validator: Draft202012Validator, args: Any) -> list[FieldError]:
    """Every bad, missing or unknown field of ``args``, with a did-you-mean where it helps.

    A reference the schema cannot resolve (a type stored before references were
    checked) is the arguments' problem too: they cannot be checked.
    """
    try:
        found = dedupe(p for error in validator.iter_errors(args) for p in _describe(error))
    except _UNCHECKABLE as exc:
        message = f"the type's params cannot be checked: {exc or type(exc).__name__}"
        return [{"field": "", "message": message}]
    told = {problem["field"] for problem in found}
    declared = validator.schema.get("properties") if isinstance(validator.schema, dict) else None
    names = set(declared) if isinstance(declared, dict) else set()
    return found + [p for p in _name_problems(args, names) if p["field"] not in told]


def _name_problems(args: Any, declared: set[str]) -> Iterator[FieldError]:
    """Undeclared argument names (``additionalProperties`` lets them in) a job cannot be
    given: each is passed as ``JOBYARD_ARG_<NAME>``, so it must make a variable name (no
    ``=``, not empty, no control character: a newline makes a second variable of an
    environment written out as lines) and not the same one as another argument's,
    declared or not."""
    if not isinstance(args, dict):
        return
    variables = {name.upper(): name for name in sorted(declared)}  # given or defaulted
    for name in args:
        if name in declared:
            continue
        if not name or "=" in name or not name.isprintable():
            message = "not a name a variable can have: not empty, no '=', no control character"
            yield {"field": name, "message": message}
        elif (other := variables.setdefault(name.upper(), name)) != name:
            message = (
                f"passed to the job as the same variable as {other!r} (names differ in case only)"
            )
            yield {"field": name, "message": message}


def _describe(error: SchemaViolation) -> Iterator[FieldError]:
    base = join_path(*error.absolute_path)
    what = "param" if base == "" else "property"
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required" and isinstance(error.validator_value, list):
        for name in error.validator_value:
            if name not in instance:
                yield {"field": join_path(base, name), "message": f"required {what} is missing"}
    elif error.validator == "additionalProperties" and isinstance(error.schema, dict):
        known = list(error.schema.get("properties") or {})
        patterns = list(error.schema.get("patternProperties") or {})
        for name in instance:
            if name not in known and not any(re.search(p, name) for p in patterns):
                listed = f"; known: {', '.join(known)}" if known else ""
                message = f"unknown {what}{did_you_mean(name, known, listed)}"
                yield {"field": join_path(base, name), "message": message}
    else:
        yield {"field": base, "message": json_message(error)}


def model_problems(
    exc: PydanticError, known_keys: Sequence[str], hints: Mapping[str, str] | None = None
) -> list[FieldError]:
    """A pydantic error as field problems: dotted paths, plain messages.

    An unknown key gets a "did you mean" from ``known_keys``; ``hints`` replace the
    message of errors whose type starts with a key (``{"datetime_": "give an ISO…"}``).
    """
    problems: list[FieldError] = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if not str(part).startswith(("~", "[key]"))]
        inner = (error.get("ctx") or {}).get("error")
        if isinstance(inner, Problems):
            problems += [{**p, "field": join_path(*loc, p["field"])} for p in inner.problems]
        else:
            message = _model_message(error, loc, known_keys, hints or {})
            problems.append({"field": join_path(*loc), "message": message})
    return problems


def _model_message(
    error: Any, loc: list[str], known_keys: Sequence[str], hints: Mapping[str, str]
) -> str:
    if error["type"] == "extra_forbidden":
        if not loc:
            return "unknown key"
        if loc[-1] in known_keys:  # a key of another level, not a typo
            return "unknown key at this level"
        return f"unknown key{did_you_mean(loc[-1], known_keys)}"
    if error["type"] == "missing":
        return "is required"
    for prefix, hint in hints.items():
        if error["type"].startswith(prefix):
            return hint
    message: str = error["msg"]
    return message.removeprefix("Value error, ")
