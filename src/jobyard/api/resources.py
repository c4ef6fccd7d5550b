"""FastAPI dependencies: the resources a request needs, taken from the app's node."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from fastapi import Request

from jobyard.errors import Invalid
from jobyard.jobtypes.catalog import Catalog
from jobyard.manager import JobManager

if TYPE_CHECKING:
    from jobyard.node import Node


# These are coroutines only so that FastAPI calls them on the event loop: a plain
# function dependency would cost a trip through the thread pool on every request.
async def get_node(request: Request) -> Node:
    return _node(request)


async def get_manager(request: Request) -> JobManager:
    return _node(request).manager


async def get_catalog(request: Request) -> Catalog:
    return _node(request).catalog


async def get_writable_catalog(request: Request) -> Catalog:
    """The catalogue, for a request that changes job types: 403 when the server's
    configuration says the API may not (``api_job_types: false``)."""
    catalog = _node(request).catalog
    catalog.refuse_writes()
    return catalog


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def split_names(values: list[str]) -> list[str]:
    """Query values given repeated (``?state=a&state=b``) or comma separated (``?state=a,b``)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def choices(field: str, values: list[str], allowed: Collection[str]) -> list[str]:
    """:func:`split_names`, each checked against ``allowed`` (422 naming the first stranger)."""
    names = split_names(values)
    unknown = [name for name in names if name not in allowed]
    if unknown:
        expected = ", ".join(allowed)
        raise Invalid(
            f"unknown {field} {unknown[0]!r}",
            [{"field": field, "location": "query", "message": f"expected one of {expected}"}],
        )
    return names
