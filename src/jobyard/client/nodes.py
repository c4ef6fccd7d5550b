"""A workflow run's nodes as ``follow_run`` tells them, one mapping per change.

Each run that ``follow_run`` emits keeps the nodes as they were then, but a copy of
them at each change would cost O(nodes) an event: O(nodes x events) to follow a
run, seconds of CPU for a run of 10,000 nodes. So the changes are kept once, in a
:class:`NodeHistory`, and each emitted run's ``nodes`` is a :class:`RunNodes`, a
read-only view of that history at one change: making one costs the same however
many nodes the run has.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping
from typing import Any

Node = dict[str, Any]


class NodeHistory:
    """Every value a run's nodes have had since it was read, for :class:`RunNodes` to show.

    Change ``n`` (from 1) gave one node a new value: each node keeps its values in
    order with the number of the change that gave each (0: as first read).
    """

    def __init__(self, nodes: Mapping[str, Node]) -> None:
        self._values: dict[str, list[Node]] = {name: [node] for name, node in nodes.items()}
        self._changes: dict[str, list[int]] = {name: [0] for name in nodes}
        self._changed: list[str] = []  # the node that change n changed, at n - 1

    def latest(self) -> RunNodes:
        return RunNodes(self, len(self._changed))

    def change(self, name: str, node: Node) -> RunNodes:
        """The nodes with ``name``'s new value (a node the run has): the run's latest."""
        self._values[name].append(node)
        self._changes[name].append(len(self._changed) + 1)
        self._changed.append(name)
        return self.latest()

    def node(self, name: str, at: int) -> Node:
        changes = self._changes[name]
        if changes[-1] <= at:  # the latest value: no search
            return self._values[name][-1]
        return self._values[name][bisect_right(changes, at) - 1]

    def names(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def changed(self, after: int, through: int) -> list[str]:
        """The nodes changes ``after`` + 1 to ``through`` changed, each once, in order."""
        return list(dict.fromkeys(self._changed[after:through]))


class RunNodes(Mapping[str, Node]):
    """A run's nodes (name → node) as they were at one change of ``follow_run``: a
    read-only mapping that compares equal to the dict of the same nodes
    (``dict(nodes)`` makes one).
    """

    __slots__ = ("_at", "_history")

    def __init__(self, history: NodeHistory, at: int) -> None:
        self._history = history
        self._at = at

    def __getitem__(self, name: str) -> Node:
        if name not in self._history:
            raise KeyError(name)
        return self._history.node(name, self._at)

    def __iter__(self) -> Iterator[str]:
        return self._history.names()

    def __len__(self) -> int:
        return len(self._history)

    def __contains__(self, name: object) -> bool:
        return name in self._history

    def __repr__(self) -> str:
        return f"RunNodes({dict(self)!r})"

    def changed_since(self, earlier: Mapping[str, Node]) -> list[str] | None:
        """The names of the nodes that changed from ``earlier`` to these, in the order
        they changed, if ``earlier`` was told before these by the same ``follow_run``;
        else None (compare them node by node)."""
        if not isinstance(earlier, RunNodes) or earlier._history is not self._history:
            return None
        if earlier._at > self._at:
            return None
        return self._history.changed(earlier._at, self._at)
