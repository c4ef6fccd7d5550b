"""Values no database can store, found in a JSON tree wherever they are.

JSON, YAML and URLs can carry values that pass a type check and then break a database or
a job: a NUL character (PostgreSQL text refuses it), a lone surrogate such as ``"\\ud800"``
(not Unicode, so not UTF-8), ``NaN`` and ``Infinity`` (SQLite would store null, PostgreSQL
refuses the JSON, and a job would ``sleep inf``), integers beyond 64 bits, and trees nested so
deep that walking them exhausts the stack. The API refuses them in every request
(:mod:`jobyard.api.inputs`), the configuration file in every value it holds.

Pure: no I/O, so that every layer may import it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from jobyard.text import text_problem

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 64  # arrays and objects within each other; far beyond any real arguments


def problems(value: Any, path: str = "", *, aliased: bool = False) -> Iterator[tuple[str, str]]:
    """``(field, message)`` for each value in a JSON tree that cannot be stored.

    Fields are named as pydantic names them (``jobs.0.args.text``). The walk
    needs no recursion, so that no nesting exhausts the stack; an object key
    counts as a value of its own. ``aliased``: the tree may hold one list or mapping in
    several places, or within itself (YAML's anchors and aliases), each walked once.
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    walked: set[int] = set()
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, dict | list):
            if aliased:
                if id(item) in walked:
                    continue
                walked.add(id(item))
            if depth >= MAX_DEPTH:
                yield where, f"nested deeper than {MAX_DEPTH} levels"
                continue
            stack.extend(reversed([*_children(item, where, depth + 1)]))  # in document order
            continue
        message = _scalar_problem(item)
        if message is not None:
            yield where, message


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number (not NaN or Infinity)"
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return "is out of range: integers must fit in 64 bits (signed)"
    return None


def _children(item: dict[Any, Any] | list[Any], where: str, depth: int) -> Iterator[Any]:
    pairs = enumerate(item) if isinstance(item, list) else item.items()
    for key, child in pairs:
        field = printable(str(key)) if not where else f"{where}.{printable(str(key))}"
        if isinstance(key, str):
            yield key, field, depth  # a key is text to store as well
        yield child, field, depth


def printable(key: str) -> str:
    """``key`` as a field name that can be written back in the answer."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8")
