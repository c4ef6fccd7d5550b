"""Text that every backend stores and every edge takes: no NUL, no lone surrogate.

PostgreSQL's text refuses a NUL character, and a lone surrogate such as ``"\\ud800"`` is not
Unicode, so not UTF-8. The API refuses either in any value it is sent
(:mod:`jobyard.api.inputs`), and the rules of the domain that must hold on every path, the
API's and others, refuse them as well (a password: :mod:`jobyard.access.accounts`).

Pure: no I/O, and nothing of jobyard, so that every layer may import it.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import from_json


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (not Unicode text)"
    return None


def read_json(text: str | bytes) -> Any:
    """JSON that people typed (a form's field, a query): pydantic's parser, whose nesting is
    bounded (the standard one recurses until the stack runs out). ValueError says where it
    stopped (``recursion limit exceeded at line 1 column 202``). What it gives may still hold
    what no database stores: the API's checks (:func:`jobyard.storable.problems`) follow."""
    return from_json(text)


def as_in_json(text: str) -> str:
    """``text`` as it is written inside a JSON string (``say \\"hi\\"``, ``C:\\\\dir``): what a
    search of a job's arguments, stored as JSON, must look for as well."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


# The characters whose lowercase Python writes otherwise than the databases' lower() does:
# Σ depends on its place ("ς" at a word's end), İ lowers to two characters (i and a dot).
_CONTEXTUAL = frozenset("Σİ")
FINAL_SIGMA, SIGMA = "\u03c2", "\u03c3"


def fold(text: str) -> str:
    """``text`` with each character lowercased on its own, as the databases' ``lower()``
    does (Python's ``lower`` alone writes a final sigma and İ as "i" and a dot), and a
    final sigma as the plain one (a Greek word typed in lowercase ends in the final
    form): what a search compares."""
    lowered = text.lower()
    if not _CONTEXTUAL.isdisjoint(text):
        lowered = "".join("i" if char == "İ" else char.lower() for char in text)
    return lowered.replace(FINAL_SIGMA, SIGMA)


def shortened(text: str, limit: int) -> str:
    """``text`` of at most ``limit`` characters: cut, with ``…`` as its last, when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
