"""``@jobyard.job``: a Python function declared as a job type, in code.

::

    import jobyard

    @jobyard.job(sla={"max_runtime": "20m"}, queue="export")
    def export(ctx, from_date: str, limit: int = 1000) -> dict[str, int]:
        ...

The decorator only records the definition on the function (and returns the
function itself, still callable directly); nothing is checked or imported
then, so that a module of jobs stays cheap to import in a pre-started child.
``jobyard.yaml`` loads such modules (``job_modules:``), and
:mod:`jobyard.jobtypes.modules` turns each definition into the job type it
would be if written in the file: ``python: module:function`` plus the keys
given here, with ``params`` from the decorator's ``params`` (a mapping of
param specs, a JSON Schema, or a pydantic model class) or, without it, from
the function's annotations and defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__jobyard_job__"


@dataclass(frozen=True)
class JobDeclaration:
    """What ``@job(...)`` said: the type's name (None: the function's), ``params``
    as given (None: from the annotations) and the other keys of a job type."""

    name: str | None
    params: Any
    keys: Mapping[str, Any] = field(default_factory=dict)


@overload
def job(name: F, /) -> F: ...


@overload
def job(
    name: str | None = None, *, params: Any = None, description: str | None = None, **keys: Any
) -> Callable[[F], F]: ...


def job(
    name: Any = None,
    *,
    params: Any = None,
    description: str | None = None,
    **keys: Any,
) -> Any:
    """Declare the decorated function a job type (see the module's docstring).

    ``keys`` are the other keys of a job type in ``jobyard.yaml`` (``queue``,
    ``timeout``, ``retries``, ``sla``, ``tags`` …); ``description`` defaults to
    the first paragraph of the function's docstring. Bare ``@job`` is ``@job()``.
    """

    def declare(func: F) -> F:
        given = dict(keys)
        text = description if description is not None else _summary(func.__doc__)
        if text:
            given["description"] = text
        setattr(func, ATTRIBUTE, JobDeclaration(name, params, given))
        return func

    if callable(name):  # used bare, as ``@job``
        func, name = name, None
        return declare(func)
    return declare


def declaration(obj: Any) -> JobDeclaration | None:
    """The declaration ``@job`` recorded on ``obj``, if any."""
    found = getattr(obj, ATTRIBUTE, None) if callable(obj) else None
    return found if isinstance(found, JobDeclaration) else None


def _summary(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())
