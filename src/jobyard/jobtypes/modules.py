"""Job types declared in code (``@jobyard.job``), loaded from the modules that hold them.

Each decorated function of a module becomes the definition it would have in
``jobyard.yaml`` — ``python: module:function`` and the decorator's keys — and
goes through :func:`~jobyard.jobtypes.spec.parse_job_type` like one written
there: same validation, same runner (the pre-started child imports the module
and calls the function). Parameters come from the decorator's ``params`` (a
mapping of param specs, a full JSON Schema, or a pydantic model class), or are
inferred from the function's signature: each annotated parameter after an
optional ``ctx``/``context`` is a param, required unless it has a default.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel

from jobyard.jobtypes.decorator import JobDeclaration, declaration
from jobyard.jobtypes.spec import JobType, JobTypeInvalid, ParamSpec, parse_job_type

_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    list: {"type": "array"},
    dict: {"type": "object"},
    dt.date: {"type": "string", "format": "date"},
    dt.datetime: {"type": "string", "format": "date-time"},
}
_CONTEXT_NAMES = ("ctx", "context")
OWN_KEYS = frozenset({"command", "shell", "python"})  # what the decorated function is


class DeclarationInvalid(ValueError):
    """A declared job type that cannot be used; the message is one line naming its function."""


@dataclass(frozen=True)
class Declared:
    """A decorated function found in a module: its target and the job type it makes."""

    target: str  # module:function
    job_type: JobType


def load_module(module_name: str, base_dir: Path) -> tuple[list[Declared], list[str]]:
    """The job types declared in ``module_name`` (importable from ``base_dir`` too), and
    a line for each declaration that is not a valid job type (naming its function):
    every one is told, not only the first.

    Raises :class:`DeclarationInvalid` (one line, naming the module) for a module that
    cannot be imported, or one without any declared job.
    """
    module = _import(module_name, base_dir)
    found = list(_declared_functions(module))
    if not found:
        raise DeclarationInvalid(f"{module_name}: declares no job (no function has @jobyard.job)")
    declared, problems = [], []
    for func in found:
        try:
            declared.append(declare(func, found_in=module_name))
        except DeclarationInvalid as exc:
            problems.append(str(exc))
    return declared, problems


def declare(func: Callable[..., Any], found_in: str | None = None) -> Declared:
    """The job type of one decorated function (:class:`DeclarationInvalid` if it has none)."""
    target = f"{func.__module__}:{func.__qualname__}"
    declared = declaration(func)
    if declared is None:
        raise DeclarationInvalid(f"{target}: is not decorated with @jobyard.job")
    if "<locals>" in func.__qualname__:
        raise DeclarationInvalid(f"{target}: a job is a module-level function (imported by name)")
    name = declared.name or func.__name__
    if own := sorted(OWN_KEYS & set(declared.keys)):
        raise DeclarationInvalid(
            f"{target}: {own[0]}: not allowed in @jobyard.job: the function is the job "
            "(a command is a type of its own under job_types)"
        )
    try:
        definition = {**declared.keys, "python": target, "params": _params(func, declared)}
        job_type = parse_job_type(name, definition, source="config")
    except (DeclarationInvalid, JobTypeInvalid) as exc:
        raise DeclarationInvalid(f"{target}: {_one_line(exc)}") from exc
    return Declared(target, job_type)


def _import(module_name: str, base_dir: Path) -> types.ModuleType:
    where = str(base_dir)
    if where not in sys.path:
        sys.path.append(where)  # after the installed packages, as the child does
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        raise DeclarationInvalid(
            f"{module_name}: cannot import it: {type(exc).__name__}: {exc}"
        ) from exc


def _declared_functions(module: types.ModuleType) -> Iterator[Callable[..., Any]]:
    """The module's own decorated functions (not ones it imported), in source order."""
    for value in vars(module).values():
        if declaration(value) is not None and getattr(value, "__module__", None) == module.__name__:
            yield value


def _params(func: Callable[..., Any], declared: JobDeclaration) -> Any:
    params = declared.params
    if isinstance(params, type) and issubclass(params, BaseModel):
        return params.model_json_schema()
    if params is None:
        return inferred_params(func)
    return params


def inferred_params(func: Callable[..., Any]) -> dict[str, Any]:
    """Param specs from the signature: annotations give types, defaults make params optional."""
    params = list(inspect.signature(func).parameters.values())
    context = params[0].name if params and params[0].name in _CONTEXT_NAMES else None
    hints = _hints(func, skip={context, "return"})
    specs: dict[str, Any] = {}
    for param in params:
        if param.name == context:
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue  # **extra takes nothing declared
        if param.kind is param.POSITIONAL_ONLY:
            raise DeclarationInvalid(f"param {param.name}: a job's arguments are keywords")
        specs[param.name] = _spec(param, hints.get(param.name, Any))
    return specs


def _hints(func: Callable[..., Any], skip: set[str | None]) -> dict[str, Any]:
    """The evaluated annotations of the params, not of the context nor the return: a
    module may name those only under ``TYPE_CHECKING`` (``ctx: Context``), as
    ``from __future__ import annotations`` leaves every annotation a string."""
    written = getattr(func, "__annotations__", None) or {}
    wanted = types.SimpleNamespace(
        __annotations__={name: hint for name, hint in written.items() if name not in skip}
    )
    try:
        # The function's own module's names: under another module's decorator
        # (functools.wraps), the wrapper's globals are that module's.
        return get_type_hints(wanted, globalns=getattr(inspect.unwrap(func), "__globals__", None))
    except Exception as exc:
        raise DeclarationInvalid(f"cannot read the annotations: {exc}") from exc


def _spec(param: inspect.Parameter, hint: Any) -> dict[str, Any]:
    spec = dict(_schema(param.name, hint))
    if param.default is param.empty:
        spec["required"] = True
    elif param.default is not None:
        spec["default"] = _json_default(param.name, param.default)
    return spec


def _schema(name: str, hint: Any) -> dict[str, Any]:
    """The param spec of an annotation (``X | None`` is X, nullable; Literal gives an enum)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(options) == 1:
            return {**_schema(name, options[0]), "nullable": True}
    if origin is Literal:
        values = [value for value in get_args(hint) if value is not None]
        kinds = {_schema(name, type(value))["type"] for value in values}
        if len(kinds) == 1:
            found = {"type": kinds.pop(), "enum": values}
            # Literal["a", None] as Literal["a"] | None: the value may be null too
            return found | {"nullable": True} if None in get_args(hint) else found
    if origin is list and len(get_args(hint)) == 1:
        try:  # list[int]: its items' type too, where one can be inferred
            return {**_SIMPLE[list], "items": _items(name, get_args(hint)[0])}
        except DeclarationInvalid:
            return dict(_SIMPLE[list])
    if origin in (list, dict):
        return dict(_SIMPLE[origin])
    if hint in _SIMPLE:
        return dict(_SIMPLE[hint])
    shown = getattr(hint, "__name__", None) or repr(hint)
    raise DeclarationInvalid(
        f"param {name}: cannot infer a type from the annotation {shown} "
        "(use str, int, float, bool, list, dict, date, datetime, Literal, or give params=)"
    )


def _items(name: str, hint: Any) -> dict[str, Any]:
    """The JSON Schema of a list's items."""
    return ParamSpec.model_validate(_schema(name, hint)).to_schema()


def _json_default(name: str, value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.utcoffset() is None:
        raise DeclarationInvalid(
            f"param {name}: the default {value.isoformat()} has no time zone "
            "(give one: datetime(..., tzinfo=UTC))"
        )
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str | int | float | bool | list | dict):
        return value
    raise DeclarationInvalid(f"param {name}: the default {value!r} is not a JSON value")


def _one_line(exc: Exception) -> str:
    if isinstance(exc, JobTypeInvalid):
        return "; ".join(
            f"{error['field']}: {error['message']}" if error.get("field") else error["message"]
            for error in exc.errors
        )
    return str(exc)
