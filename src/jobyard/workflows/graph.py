"""Graph algorithms for workflows: pure, iterative, O(nodes + edges).

A graph is given as ``deps``: each node mapped to the nodes it depends on
(its upstream). Every function here is iterative, so a workflow of tens of
thousands of nodes never meets Python's recursion limit. Orders are stable:
among nodes that could go next, the one first in ``deps`` goes first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

Deps = Mapping[str, Sequence[str]]


def dependents(deps: Deps) -> dict[str, tuple[str, ...]]:
    """Each node's direct dependents (downstream), in ``deps`` order."""
    found: dict[str, list[str]] = {name: [] for name in deps}
    for name, upstream in deps.items():
        for dep in upstream:
            found[dep].append(name)
    return {name: tuple(names) for name, names in found.items()}


def kahn_order(deps: Deps) -> tuple[list[str], list[str]]:
    """(the nodes in a topological order, the nodes left over because of a cycle)."""
    waiting = {name: len(set(upstream)) for name, upstream in deps.items()}
    ready = deque(name for name, count in waiting.items() if count == 0)
    downstream = dependents(deps)
    order: list[str] = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for child in dict.fromkeys(downstream[name]):
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    done = set(order)
    return order, [name for name in deps if name not in done]


def cycles(deps: Deps) -> list[list[str]]:
    """One cycle per group of nodes that depend on each other, upstream first.

    Each cycle starts at its node first in ``deps`` and does not repeat it at
    the end: ``[a, b, c]`` means b depends on a, c on b and a on c.
    """
    _, left = kahn_order(deps)
    if not left:
        return []
    rank = {name: index for index, name in enumerate(deps)}
    found = []
    for component in _components(deps, left):
        if len(component) > 1 or component[0] in deps[component[0]]:
            found.append(_cycle_in(deps, set(component), min(component, key=rank.__getitem__)))
    return sorted(found, key=lambda cycle: rank[cycle[0]])


def _cycle_in(deps: Deps, component: set[str], start: str) -> list[str]:
    """A cycle through ``start`` inside a strongly connected ``component``."""
    # breadth-first downstream from start, so the cycle found is a shortest one
    parent: dict[str, str] = {}
    queue = deque([start])
    reverse = _reverse_within(deps, component)
    while queue:
        name = queue.popleft()
        for child in reverse[name]:
            if child == start:
                return _path_to(parent, name, start)
            if child not in parent:
                parent[child] = name
                queue.append(child)
    raise AssertionError("a strongly connected component always has a cycle")


def _reverse_within(deps: Deps, component: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {name: [] for name in component}
    for name in component:
        for dep in deps[name]:
            if dep in component:
                found[dep].append(name)
    return found


def _path_to(parent: Mapping[str, str], last: str, start: str) -> list[str]:
    path = [last]
    while path[-1] != start:
        path.append(parent[path[-1]])
    return path[::-1]


def _components(deps: Deps, nodes: Iterable[str]) -> list[list[str]]:
    """The strongly connected components among ``nodes`` (Tarjan, without recursion)."""
    order = list(nodes)
    within = set(order)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in order:
        if root in index:
            continue
        work = [(root, iter(deps[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            name, children = work[-1]
            child = next((c for c in children if c in within), None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[name])
                if low[name] == index[name]:
                    found.append(_pop_component(stack, on_stack, name))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(deps[child])))
            elif child in on_stack:
                low[name] = min(low[name], index[child])
    return found


def _pop_component(stack: list[str], on_stack: set[str], root: str) -> list[str]:
    component = []
    while True:
        name = stack.pop()
        on_stack.discard(name)
        component.append(name)
        if name == root:
            return component


def descendants(downstream: Mapping[str, Sequence[str]], start: str) -> set[str]:
    """Every node reachable downstream of ``start`` (``start`` itself excluded)."""
    seen: set[str] = set()
    todo = list(downstream[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(downstream[name])
    return seen
