"""A workflow's graph as the pages draw it: laid out once per workflow, then reused.

The layout (:mod:`jobyard.ui.graph`) places the nodes in layers from left to right;
a run's page only colours the nodes, so a run of a thousand nodes costs its states,
not a new layout.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from jobyard.ui.graph import Layout, layout
from jobyard.workflows.spec import WorkflowSpec


@dataclass(frozen=True)
class Drawing:
    layout: Layout
    paths: list[tuple[str, str, str]]  # (source, target, SVG path data)


_cache: dict[str, tuple[WorkflowSpec, Drawing]] = {}
_lock = threading.Lock()


def drawing_of(spec: WorkflowSpec) -> Drawing:
    """The drawing of ``spec``, computed the first time it is asked for."""
    with _lock:
        cached = _cache.get(spec.name)
        if cached is not None and cached[0] is spec:
            return cached[1]
    made = _draw(spec)
    with _lock:
        _cache[spec.name] = (spec, made)
    return made


def _draw(spec: WorkflowSpec) -> Drawing:
    return drawing_of_graph({name: list(node.depends_on) for name, node in spec.nodes.items()})


def drawing_of_graph(graph: dict[str, list[str]]) -> Drawing:
    """The drawing of nodes and what each depends on (not kept: a run's own graph)."""
    placed = layout(graph)
    paths = [
        (edge.source, edge.target, "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in edge.points))
        for edge in placed.edges
    ]
    return Drawing(placed, paths)
