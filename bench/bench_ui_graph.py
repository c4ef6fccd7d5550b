"""Laying out workflow graphs for the UI (pure Python, no database): time per shape.

Run ``python -m bench.bench_ui_graph`` (``--nodes 1000 10000 --rounds 5``);
the figures are in RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from jobyard.ui.graph import layout

Edges = dict[str, list[str]]


def fan(nodes: int) -> Edges:
    """1 → nodes-2 in parallel → 1."""
    middle = [f"n{i}" for i in range(nodes - 2)]
    return {"start": [], **{name: ["start"] for name in middle}, "end": middle}


def grid(nodes: int) -> Edges:
    """Layers of 20, each node depending on three of the layer before."""
    width = 20
    edges: Edges = {}
    for i in range(nodes):
        layer, slot = divmod(i, width)
        before = [f"g{(layer - 1) * width + (slot + d) % width}" for d in (0, 1, 7)]
        edges[f"g{i}"] = before if layer else []
    return edges


def chain_to_end(nodes: int) -> Edges:
    """A chain whose last node waits for all the others: long edges past the budget."""
    chain = {f"c{i}": [f"c{i - 1}"] if i else [] for i in range(nodes - 1)}
    return {**chain, "end": list(chain)}


SHAPES: dict[str, Callable[[int], Edges]] = {"fan": fan, "grid": grid, "chain": chain_to_end}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    for shape, build in SHAPES.items():
        for nodes in options.nodes:
            edges = build(nodes)
            times = []
            for _ in range(options.rounds):
                started = time.perf_counter()
                layout(edges)
                times.append(time.perf_counter() - started)
            print(f"{shape:6} {nodes:>6} nodes: best {min(times) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
