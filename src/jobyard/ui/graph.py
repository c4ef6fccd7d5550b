"""Where a workflow's nodes go in a left-to-right drawing: pure geometry, no I/O.

A layered (Sugiyama) layout, kept simple so that 10,000 nodes take a fraction
of a second:

1. layers: the longest path from the sources; a node sits one layer right of
   its deepest upstream, so every edge points right;
2. an edge that spans several layers gets a waypoint in each layer it crosses,
   so it runs between boxes rather than through them (within a budget of
   waypoints, shortest edges first; longer ones are drawn straight);
3. order within a layer: barycenter sweeps, rightwards then leftwards, each
   node moving to the mean place of its neighbours in the layers before (after),
   which removes most crossings;
4. coordinates: a layer is a column as wide as its widest label; a column
   stacks its nodes in order and is centred on the tallest one (a very wide
   layer is one tall column: the page scrolls).

Deterministic: ties keep the order of the nodes in ``edges``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from jobyard.workflows.graph import cycles, kahn_order

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    """A node's rectangle (top left corner, size) and its layer (0: the sources)."""

    x: float
    y: float
    w: float
    h: float
    layer: int


@dataclass(frozen=True)
class Edge:
    """A line from ``source`` (upstream) to ``target`` (the node depending on it)."""

    source: str
    target: str
    points: list[Point]


@dataclass(frozen=True)
class Layout:
    nodes: dict[str, Box]
    edges: list[Edge]
    width: float
    height: float


@dataclass(frozen=True)
class Spacing:
    """Sizes in px; a box is as wide as its column's longest name (within limits)."""

    node_height: float = 32
    min_width: float = 80
    max_width: float = 240
    char_width: float = 7.5  # an average glyph of a 13 px sans-serif
    padding: float = 12  # on each side of a label
    layer_gap: float = 72
    node_gap: float = 12
    margin: float = 16
    waypoints_per_node: int = 4  # the budget of step 2

    def label_width(self, name: str) -> float:
        wanted = len(name) * self.char_width + 2 * self.padding
        return min(max(wanted, self.min_width), self.max_width)


def layout(
    edges: Mapping[str, Sequence[str]], spacing: Spacing | None = None, *, sweeps: int = 4
) -> Layout:
    """Lay out the DAG whose ``edges[node]`` lists the node's upstream dependencies.

    Every node is a key; :class:`ValueError` names an unknown upstream or a cycle.
    """
    spacing = spacing or Spacing()
    layers = _layers(edges)
    graph = _Graph(list(edges), layers)
    graph.connect(edges, spacing.waypoints_per_node * len(edges))
    columns = graph.ordered(max(layers.values(), default=-1) + 1, sweeps)
    return _Placement(graph, columns, spacing).layout()


def _layers(edges: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each node's layer: one more than its deepest upstream's (0 for a source)."""
    for name, upstream in edges.items():
        for dep in upstream:
            if dep not in edges:
                raise ValueError(f"node {name!r} depends on {dep!r}, which is not a node")
    order, left = kahn_order(edges)
    if left:
        cycle = cycles(edges)[0]
        raise ValueError("the graph has a cycle: " + " → ".join([*cycle, cycle[0]]))
    layer: dict[str, int] = {}
    for name in order:
        layer[name] = max((layer[dep] + 1 for dep in edges[name]), default=0)
    return layer


@dataclass
class _Graph:
    """Vertices by number: the nodes first (in ``edges`` order), then the waypoints."""

    names: list[str]
    layer_of: Mapping[str, int]
    layer: list[int] = field(default_factory=list)
    ups: list[list[int]] = field(default_factory=list)
    downs: list[list[int]] = field(default_factory=list)
    routes: list[list[int]] = field(default_factory=list)  # an edge's vertices, source first

    def __post_init__(self) -> None:
        for name in self.names:
            self._vertex(self.layer_of[name])

    def _vertex(self, layer: int) -> int:
        self.layer.append(layer)
        self.ups.append([])
        self.downs.append([])
        return len(self.layer) - 1

    def connect(self, edges: Mapping[str, Sequence[str]], budget: int) -> None:
        """Add every edge, with waypoints for the shortest long ones within ``budget``."""
        index = {name: number for number, name in enumerate(self.names)}
        pairs = [(index[dep], index[name]) for name in edges for dep in dict.fromkeys(edges[name])]
        bent = self._bent(pairs, budget)
        for number, (source, target) in enumerate(pairs):
            inner = range(self.layer[source] + 1, self.layer[target]) if number in bent else ()
            route = [source, *(self._vertex(layer) for layer in inner), target]
            for upper, lower in itertools.pairwise(route):
                self.downs[upper].append(lower)
                self.ups[lower].append(upper)
            self.routes.append(route)

    def _bent(self, pairs: list[tuple[int, int]], budget: int) -> set[int]:
        """The edges given waypoints: by span, shortest first, while the budget lasts."""
        bent: set[int] = set()
        spans = sorted(range(len(pairs)), key=lambda k: self._span(pairs[k]))
        for number in spans:
            needed = self._span(pairs[number]) - 1
            if needed > budget:
                break  # the rest are longer still
            if needed > 0:
                bent.add(number)
                budget -= needed
        return bent

    def _span(self, pair: tuple[int, int]) -> int:
        return self.layer[pair[1]] - self.layer[pair[0]]

    def ordered(self, count: int, sweeps: int) -> list[list[int]]:
        """The vertices of each layer, top to bottom, after ``sweeps`` barycenter sweeps."""
        columns: list[list[int]] = [[] for _ in range(count)]
        for vertex, layer in enumerate(self.layer):
            columns[layer].append(vertex)
        place = [0.0] * len(self.layer)
        for column in columns:
            _number(column, place)
        for sweep in range(sweeps):
            rightwards = sweep % 2 == 0
            steps = range(1, count) if rightwards else range(count - 2, -1, -1)
            neighbours = self.ups if rightwards else self.downs
            for layer in steps:
                columns[layer] = _by_barycenter(columns[layer], neighbours, place)
                _number(columns[layer], place)
        return columns


def _number(column: list[int], place: list[float]) -> None:
    """Places centred on 0, so that layers of different sizes line up in the middle."""
    middle = (len(column) - 1) / 2
    for index, vertex in enumerate(column):
        place[vertex] = index - middle


def _by_barycenter(column: list[int], neighbours: list[list[int]], place: list[float]) -> list[int]:
    def barycenter(vertex: int) -> float:
        around = neighbours[vertex]
        if not around:
            return place[vertex]  # nothing pulls it: it keeps its place
        return sum(place[other] for other in around) / len(around)

    return sorted(column, key=barycenter)  # stable: ties keep their order


class _Placement:
    """Coordinates: columns left to right, each stacked and centred vertically."""

    def __init__(self, graph: _Graph, columns: list[list[int]], spacing: Spacing) -> None:
        self.graph = graph
        self.columns = columns
        self.spacing = spacing
        self.x: list[float] = []
        self.widths = [self._width(column) for column in columns]
        self.y = [0.0] * len(graph.layer)
        self.width = self._place_columns()
        self.height = self._place_rows()

    def _width(self, column: list[int]) -> float:
        names = self.graph.names
        real = [names[vertex] for vertex in column if vertex < len(names)]
        return max(map(self.spacing.label_width, real), default=self.spacing.min_width)

    def _height(self, vertex: int) -> float:
        return self.spacing.node_height if vertex < len(self.graph.names) else 0.0

    def _place_columns(self) -> float:
        x = self.spacing.margin
        for width in self.widths:
            self.x.append(x)
            x += width + self.spacing.layer_gap
        end = x - self.spacing.layer_gap if self.widths else x
        return end + self.spacing.margin

    def _extent(self, column: list[int]) -> float:
        gaps = self.spacing.node_gap * max(len(column) - 1, 0)
        return sum(self._height(vertex) for vertex in column) + gaps

    def _place_rows(self) -> float:
        tallest = max(map(self._extent, self.columns), default=0.0)
        for column in self.columns:
            y = self.spacing.margin + (tallest - self._extent(column)) / 2
            for vertex in column:
                self.y[vertex] = y
                y += self._height(vertex) + self.spacing.node_gap
        return tallest + 2 * self.spacing.margin

    def layout(self) -> Layout:
        names = self.graph.names
        nodes = {name: self._box(vertex) for vertex, name in enumerate(names)}
        edges = [
            Edge(names[route[0]], names[route[-1]], self._points(route))
            for route in self.graph.routes
        ]
        return Layout(nodes, edges, self.width, self.height)

    def _box(self, vertex: int) -> Box:
        layer = self.graph.layer[vertex]
        height = self.spacing.node_height
        return Box(self.x[layer], self.y[vertex], self.widths[layer], height, layer)

    def _points(self, route: list[int]) -> list[Point]:
        """From the source's right side through each waypoint to the target's left side."""
        middle = self.spacing.node_height / 2
        source, target = route[0], route[-1]
        first = self.graph.layer[source]
        points = [(self.x[first] + self.widths[first], self.y[source] + middle)]
        for waypoint in route[1:-1]:
            layer = self.graph.layer[waypoint]
            y = self.y[waypoint]
            points += [(self.x[layer], y), (self.x[layer] + self.widths[layer], y)]
        points.append((self.x[self.graph.layer[target]], self.y[target] + middle))
        return points
