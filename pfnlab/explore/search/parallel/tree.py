"""The coordinator's nodes: the tree it keeps of them, and how it started each thread at a
node (engine-internal; coordinator.py).

The coordinator keeps the sequential search's stack nodes (dpor/stack.py) as a tree: each
node with the nodes and events of its path and its schedule, and a queue of the nodes that
may have a thread to explore, deepest first (:class:`Tree`). A thread started at a node is
a :class:`Start`: the child's sleep set, the hints followed below it, the child's schedule,
and what explores the child.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from pfnlab.explore.runtime import Footprint
from pfnlab.explore.search.dpor.stack import Event, Node


@dataclass
class Tree:
    """The coordinator's nodes: each with the events and nodes of its path, and a queue
    of the nodes that may have a thread to explore, deepest (latest made) first."""

    nodes: list[Node] = field(default_factory=list)
    path: dict[int, tuple[list[Node], list[Event], tuple[int, ...]]] = field(
        default_factory=dict)
    index: dict[int, int] = field(default_factory=dict)
    heap: list[int] = field(default_factory=list)
    queued: set[int] = field(default_factory=set)

    def add(self, node: Node, nodes: list[Node], events: list[Event],
            tids: tuple[int, ...]) -> None:
        self.index[id(node)] = len(self.nodes)
        self.nodes.append(node)
        self.path[id(node)] = (nodes, events, tids)
        self.touch([node])

    def touch(self, nodes: list[Node]) -> None:
        """``nodes`` may have been given threads to explore: queue them."""
        for n in nodes:
            i = self.index[id(n)]
            if i not in self.queued:
                self.queued.add(i)
                heapq.heappush(self.heap, -i)

    def open_work(self) -> tuple[Node, int] | None:
        """The deepest node with a thread to explore (not started, not asleep). Every
        change to a node's backtrack set touches it; a node leaves the queue when it
        has nothing left (and comes back when touched again)."""
        heap = self.heap
        while heap:
            node = self.nodes[-heap[0]]
            for t in sorted(node.backtrack):
                if t not in node.sleep:
                    return node, t
            self.queued.discard(-heapq.heappop(heap))
        return None

    def untouched_work(self) -> bool:
        """Whether a node has a thread to explore that was never queued (a missed
        ``touch``); such nodes are queued now."""
        missed = [n for n in self.nodes if any(t not in n.sleep for t in n.backtrack)]
        self.touch(missed)
        return bool(missed)


@dataclass
class Start:
    """How the coordinator started a thread at a node: the child's sleep set, the hints
    followed below it, the child's schedule, and what explores the child (a coordinator
    node, a task, or nothing: the execution ended there)."""

    sleep: tuple[tuple[int, Footprint], ...]
    follow: set[tuple[int, ...]]
    tids: tuple[int, ...]
    parent: int
    node: Node | None = None
    task: bool = False


def hints_of(nodes: list[Node]) -> list[dict[int, frozenset[Any]]]:
    return [{h: frozenset(v) for h, v in n.hints.items()} for n in nodes]
