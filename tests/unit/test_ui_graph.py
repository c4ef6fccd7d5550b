"""The layered layout of workflow graphs: layers, order, coordinates, routes."""

from __future__ import annotations

import itertools

import pytest

from jobyard.ui.graph import Box, Layout, Spacing, layout


def overlap(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def crossings(result: Layout) -> int:
    """Crossings among edges between adjacent layers (their ends swap order)."""
    spans = [
        (result.nodes[e.source], result.nodes[e.target])
        for e in result.edges
        if result.nodes[e.target].layer == result.nodes[e.source].layer + 1
    ]
    count = 0
    for (s1, t1), (s2, t2) in itertools.combinations(spans, 2):
        if s1.layer == s2.layer and (s1.y - s2.y) * (t1.y - t2.y) < 0:
            count += 1
    return count


def test_a_chain_runs_left_to_right_on_one_line() -> None:
    result = layout({"a": [], "b": ["a"], "c": ["b"]})
    boxes = [result.nodes[name] for name in "abc"]
    assert [box.layer for box in boxes] == [0, 1, 2]
    assert boxes[0].x < boxes[1].x < boxes[2].x
    assert boxes[0].x + boxes[0].w < boxes[1].x  # a gap between the columns
    assert {box.y for box in boxes} == {boxes[0].y}
    assert result.width == boxes[2].x + boxes[2].w + Spacing().margin
    assert result.height == Spacing().node_height + 2 * Spacing().margin


def test_a_node_sits_right_of_its_deepest_upstream() -> None:
    result = layout({"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"], "e": []})
    assert {name: box.layer for name, box in result.nodes.items()} == {
        "a": 0,
        "b": 1,
        "c": 2,
        "d": 3,
        "e": 0,
    }


def test_boxes_of_a_layer_do_not_overlap_and_edges_join_their_sides() -> None:
    result = layout({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]})
    b, c = result.nodes["b"], result.nodes["c"]
    assert b.layer == c.layer == 1
    assert not overlap(b, c)
    assert abs(b.y - c.y) >= Spacing().node_height + Spacing().node_gap
    for edge in result.edges:
        source, target = result.nodes[edge.source], result.nodes[edge.target]
        assert edge.points[0] == (source.x + source.w, source.y + source.h / 2)
        assert edge.points[-1] == (target.x, target.y + target.h / 2)
    assert [(e.source, e.target) for e in result.edges] == [
        ("a", "b"),
        ("a", "c"),
        ("b", "d"),
        ("c", "d"),
    ]
    # the diamond is symmetric: a and d are centred between b and c
    assert result.nodes["a"].y == result.nodes["d"].y == (b.y + c.y) / 2


def test_a_long_edge_passes_between_the_boxes_it_crosses() -> None:
    edges = {"a": [], "x": [], "y": [], "b": ["a", "x", "y"], "c": ["b", "a"]}
    result = layout(edges)
    [long] = [e for e in result.edges if (e.source, e.target) == ("a", "c")]
    middle = [box for box in result.nodes.values() if box.layer == 1]
    assert len(long.points) == 4  # in, through layer 1, out
    (x1, y1), (x2, y2) = long.points[1:3]
    assert y1 == y2
    column = middle[0]
    assert (x1, x2) == (column.x, column.x + column.w)
    assert all(not box.y <= y1 <= box.y + box.h for box in middle)


def test_waypoints_are_limited_and_the_rest_are_drawn_straight() -> None:
    chain = {f"c{i}": [f"c{i - 1}"] if i else [] for i in range(30)}
    edges = {**chain, "end": list(chain)}
    result = layout(edges, Spacing(waypoints_per_node=1))
    to_end = [e for e in result.edges if e.target == "end"]
    waypoints = sum((len(e.points) - 2) // 2 for e in to_end)
    assert 0 < waypoints <= len(edges)
    assert [len(e.points) for e in to_end][-1] == 2  # the shortest span: c29 → end
    assert len(to_end[0].points) == 2  # the longest (c0 → end) did not fit the budget


def test_barycenter_sweeps_undo_crossings() -> None:
    # in the input order, each level reverses its parents' order: edges cross
    edges: dict[str, list[str]] = {"root": []}
    for level in range(1, 5):
        parents = [name for name in edges if name.count(".") == level - 1]
        for parent in reversed(parents):
            for child in ("1", "0"):
                edges[f"{parent}.{child}"] = [parent]
    assert crossings(layout(edges, sweeps=0)) > 100
    assert crossings(layout(edges)) == 0


def test_the_layout_is_deterministic() -> None:
    edges = {f"n{i}": [f"n{j}" for j in range(i) if (i * j) % 7 == 3] for i in range(60)}
    assert layout(edges) == layout(dict(edges))


def test_columns_are_as_wide_as_their_longest_name_within_limits() -> None:
    spacing = Spacing()
    result = layout({"a": [], "a_rather_long_name": ["a"], "x" * 200: ["a_rather_long_name"]})
    assert result.nodes["a"].w == spacing.min_width
    assert result.nodes["a_rather_long_name"].w == spacing.label_width("a_rather_long_name")
    assert spacing.min_width < result.nodes["a_rather_long_name"].w < spacing.max_width
    assert result.nodes["x" * 200].w == spacing.max_width


def test_repeated_upstreams_make_one_edge() -> None:
    result = layout({"a": [], "b": ["a", "a"]})
    assert [(e.source, e.target) for e in result.edges] == [("a", "b")]


def test_an_empty_graph_is_just_its_margins() -> None:
    margin = Spacing().margin
    assert layout({}) == Layout({}, [], 2 * margin, 2 * margin)


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ({"a": ["b"], "b": ["a"]}, "the graph has a cycle: a → b → a"),
        ({"a": ["a"]}, "the graph has a cycle: a → a"),
        ({"a": [], "b": ["a", "ghost"]}, "node 'b' depends on 'ghost', which is not a node"),
    ],
)
def test_a_cycle_or_an_unknown_node_is_refused(edges: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        layout(edges)


def test_ten_thousand_nodes_fan_out_in_one_tall_column() -> None:
    middle = [f"n{i:04d}" for i in range(9_998)]
    edges = {"start": [], **{name: ["start"] for name in middle}, "end": middle}
    result = layout(edges)
    assert len(result.nodes) == 10_000
    assert len(result.edges) == 2 * 9_998
    column = sorted((result.nodes[name] for name in middle), key=lambda box: box.y)
    assert {box.layer for box in column} == {1}
    assert {box.x for box in column} == {column[0].x}
    pitch = Spacing().node_height + Spacing().node_gap
    assert all(b.y - a.y == pitch for a, b in itertools.pairwise(column))
    assert result.height == column[-1].y + column[-1].h + Spacing().margin
    start, end = result.nodes["start"], result.nodes["end"]
    assert (start.layer, end.layer) == (0, 2)
    assert start.y == end.y == result.height / 2 - start.h / 2  # centred on the column
