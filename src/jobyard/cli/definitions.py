"""Definitions read from a YAML file (job types, schedules) and sent to the API one by one.

A file holds them as in ``jobyard.yaml`` (under ``job_types:`` or
``schedules:``), or as a mapping of names to definitions, or as one
definition with its ``name``. Every problem, the file's or the server's, is
one line naming the file and the field (``types.yaml: job_types.export.command:
required``), so that the user knows where to look.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobyard.cli.common import exit_code, fail


@dataclass(frozen=True)
class Definition:
    """One named definition of a file, and where it sits in the file."""

    name: str
    body: dict[str, Any]
    field: str  # its path in the file, e.g. job_types.export


def load(path: Path, section: str) -> list[Definition]:
    """The definitions of ``path``, read as the server reads ``jobyard.yaml`` (text not
    UTF-8, invalid YAML and a key written twice are refused; keys and dates are text as
    written); a bad file is one error line (its problems, each after the other) and
    exit code 2."""
    from jobyard.config import ConfigError, read_yaml

    try:
        _, data = read_yaml(path)
    except ConfigError as exc:
        fail("; ".join(str(problem) for problem in exc.problems))
    return _definitions(path, section, data)


def _definitions(path: Path, section: str, data: Any) -> list[Definition]:
    if not isinstance(data, Mapping) or not data:
        fail(f"{path}: expected a mapping of {section} (name: definition)")
    if isinstance(data.get("name"), str):  # one definition with its name
        body = {key: value for key, value in data.items() if key != "name"}
        return [Definition(data["name"], body, "")]
    prefix = ""
    if section in data:
        data, prefix = data[section], f"{section}."
        if not isinstance(data, Mapping) or not data:
            fail(f"{path}: {section}: expected a mapping of names to definitions")
    found = []
    for name, body in data.items():
        if not isinstance(body, Mapping):
            fail(f"{path}: {prefix}{name}: expected a mapping (the definition of {name!r})")
        found.append(Definition(str(name), dict(body), f"{prefix}{name}"))
    return found


def apply(
    source: str,
    definitions: list[Definition],
    send: Callable[[Definition], Any],
    verb: str,
) -> list[Any]:
    """``send`` each definition in order; the first refusal stops, naming file and field.

    What was done before the refusal stays done, and the error says so.
    """
    from jobyard.client.sync import ApiError

    done: list[Any] = []
    for definition in definitions:
        try:
            done.append(send(definition))
        except ApiError as exc:
            names = ", ".join(d.name for d in definitions[: len(done)])
            before = f" ({verb} before it: {names})" if done else ""
            fail(_refusal(source, definition, exc) + before, exit_code(exc.status))
    return done


def _refusal(source: str, definition: Definition, exc: Any) -> str:
    """``FILE: FIELD: message`` for each field the server named, on one line."""
    errors = [e for e in exc.errors if isinstance(e, Mapping)]
    if not errors:
        where = definition.field or definition.name
        named = source.endswith(f" {where}")  # "schedule NAME", from flags: said once
        return f"{source}: {exc.detail}" if named else f"{source}: {where}: {exc.detail}"
    problems = []
    for error in errors:
        parts = (definition.field, str(error.get("field") or ""))
        field = ".".join(part for part in parts if part) or definition.name
        problems.append(f"{field}: {error.get('message', exc.detail)}")
    return f"{source}: " + "; ".join(problems)
