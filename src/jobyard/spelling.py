"""Suggestions for a misspelt name: the ``; did you mean 'x'?`` of every error message.

Pure: no I/O, and nothing of jobyard, so that every layer may import it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


def closest(name: str, known: Iterable[str]) -> str | None:
    """The one of ``known`` most like ``name`` (``name`` itself if known), or None if none
    is close enough to be a likely misspelling of it.

    Called while saying what is wrong with a value, which may be anything (a number for a
    time zone): a ``name`` that is not text is like nothing, and what of ``known`` is not
    text is passed over, so that the message is made rather than a ``TypeError`` raised.
    """
    if not isinstance(name, str):
        return None
    texts = [entry for entry in known if isinstance(entry, str)]
    close = difflib.get_close_matches(name, texts, n=1)
    return close[0] if close else None


def did_you_mean(name: str, known: Iterable[str], otherwise: str = "") -> str:
    """``; did you mean 'x'?`` for the one of ``known`` closest to ``name``, else ``otherwise``
    (such as a list of what is allowed)."""
    guess = closest(name, known)
    return otherwise if guess is None else f"; did you mean {guess!r}?"


def unknown_key(name: str, known: Sequence[str]) -> str:
    """What is said of a key ``name`` of a mapping whose keys are ``known``: the key it likely
    misspells, else the keys allowed."""
    allowed = f" (allowed: {', '.join(known)})"
    return f"unknown key{did_you_mean(name, known, allowed)}"
