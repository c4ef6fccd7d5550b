"""A JSON Schema violation told in JSON's words.

jsonschema writes the values in its messages as Python does (``None``, ``True``,
``'text'``), but those who read them wrote JSON or YAML: a request's arguments, a job
type's schema. :func:`json_message` gives the same message with those values as JSON
(``null``, ``true``, ``"text"``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaViolation


def json_message(error: SchemaViolation) -> str:
    """``error``'s message with the value checked and the schema's values it names
    (an enum, a type, a pattern, a format…) written as JSON."""
    message, start = error.message, ""
    checked = repr(error.instance)
    if message.startswith(checked):  # most messages start with the value checked
        start, message = _json(error.instance, checked), message[len(checked) :]
    # Longest first: a list is replaced whole before its items would be, one by one.
    for python, written in sorted(set(_named(error)), key=lambda pair: -len(pair[0])):
        message = message.replace(python, written)
    return start + message


def _named(error: SchemaViolation) -> Iterator[tuple[str, str]]:
    """(Python's repr, JSON) of the values the rest of ``error``'s message may name: the
    keyword's value, the names it lists (``type``, ``dependentRequired``) and the
    property names of the value checked (those found unexpected)."""
    value, instance = error.validator_value, error.instance
    # A bare null, true or false is named by ``const`` alone (``uniqueItems: true`` is not).
    parts = [value] if isinstance(value, str | list | dict) or error.validator == "const" else []
    if isinstance(value, list):
        parts += [item for item in value if isinstance(item, str)]
    if isinstance(value, dict):
        parts += [key for key in value if isinstance(key, str)]
        parts += [item for items in value.values() if isinstance(items, list) for item in items]
    if isinstance(instance, dict):
        parts += [key for key in instance if isinstance(key, str)]
    for part in parts:
        python = repr(part)
        if (written := _json(part, python)) != python:
            yield python, written


def _json(value: Any, otherwise: str) -> str:
    """``value`` as JSON, or ``otherwise`` for a value JSON has no words for."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return otherwise
