"""Routing: a job runs only on a worker that has every tag its type requires.

A job's required tags are stored as one normalized string, its *route*: the
tags sorted and comma-joined (``""`` when it needs none). A worker with tags
``{big, linux}`` may run the routes ``""``, ``"big"``, ``"linux"`` and
``"big,linux"`` — every subset of its tags — so the claim filters with one
indexed-friendly ``route IN (…)`` instead of locking rows and discarding them.
A worker's tags are capped at :data:`MAX_WORKER_TAGS`, which keeps that list
at most 256 strings long.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import combinations

MAX_WORKER_TAGS = 8
MAX_TAG_LENGTH = 30  # 8 tags and their commas fit the 255 characters of ``jobs.route``
TAG_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_TAG_LENGTH - 1}}}")
TAG_HINT = f"a tag is 1-{MAX_TAG_LENGTH} letters, digits, '_', '.' or '-', starting alphanumeric"


class TagsInvalid(ValueError):
    """Tags that cannot be used; the message says which and why."""


def check_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """``tags`` sorted without duplicates; raises :class:`TagsInvalid` for a bad or extra tag."""
    unique = sorted(set(tags))
    bad = [tag for tag in unique if not TAG_RE.fullmatch(tag)]
    if bad:
        raise TagsInvalid(f"invalid tag {bad[0]!r}: {TAG_HINT}")
    if len(unique) > MAX_WORKER_TAGS:
        raise TagsInvalid(f"at most {MAX_WORKER_TAGS} tags, not {len(unique)}")
    return tuple(unique)


def route_of(tags: Iterable[str]) -> str:
    """The route of a job that requires ``tags``: sorted, comma-joined, ``""`` for none."""
    return ",".join(sorted(set(tags)))


def routes_for(tags: Iterable[str] | None) -> list[str]:
    """Every route a worker with ``tags`` may run: the routes of all subsets of its tags."""
    unique = check_tags(tags or ())
    return [
        ",".join(subset) for size in range(len(unique) + 1) for subset in combinations(unique, size)
    ]
