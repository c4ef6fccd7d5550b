"""FastAPI dependencies: the resources a request needs, taken from the app's node."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from jobyard.catalog import Catalog
from jobyard.manager import JobManager

if TYPE_CHECKING:
    from jobyard.node import Node


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def get_manager(request: Request) -> JobManager:
    return get_node(request).manager


def get_catalog(request: Request) -> Catalog:
    return get_node(request).catalog
