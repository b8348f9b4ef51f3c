"""Minimal counterexamples: fewest preemptions first, then fewest steps.

For k = 0, 1, 2 … a breadth-first search over schedules with at most k preemptions looks for
an execution that shows the same finding (same kind and property). Breadth-first order makes
the first one found the shortest among those with ≤ k preemptions; trying k upward makes it
the one with fewest preemptions. States are cached per (state, running thread) with the
fewest preemptions seen. A node budget bounds the work; past it the original execution is
kept and the report says it is not proven minimal.
"""

from __future__ import annotations

from dataclasses import dataclass

from pfnlab.explore.program import Program
from pfnlab.explore.search.common import replay_tids


@dataclass
class Minimal:
    """A minimal schedule (as tids) and in what sense it is minimal."""

    tids: list[int]
    preemptions: int
    proven: bool


def minimize(
    program: Program,
    key: tuple[str, str],
    fallback: list[int],
    *,
    max_preemptions: int = 4,
    node_budget: int = 20_000,
    max_steps: int = 10_000,
) -> Minimal:
    """The schedule with fewest preemptions, then fewest steps, that shows finding ``key``."""
    nodes = 0
    for bound in range(max_preemptions + 1):
        frontier: list[tuple[list[int], int, int]] = [([], -1, 0)]
        visited: dict[tuple[int, int], int] = {}
        depth = 0
        while frontier:
            depth += 1
            if depth > len(fallback) + 1 and bound > 0:
                break
            nxt: list[tuple[list[int], int, int]] = []
            for prefix, last, used in frontier:
                probe = replay_tids(program, prefix, checks=True, max_steps=max_steps)
                en = probe.enabled()
                probe.close()
                order = sorted(en, key=lambda t: (t != last, t))
                for t in order:
                    u = used + (1 if last >= 0 and t != last and last in en else 0)
                    if u > bound:
                        continue
                    nodes += 1
                    if nodes > node_budget:
                        return Minimal(fallback, -1, False)
                    ex = replay_tids(program, prefix, checks=True, max_steps=max_steps)
                    ex.step(t)
                    f = ex.finding
                    if f is not None and f.key == key:
                        ex.close()
                        return Minimal([*prefix, t], u, True)
                    if f is not None or ex.finished:
                        ex.close()
                        continue
                    fpr = ex.fingerprint()
                    ex.close()
                    if fpr is not None:
                        seen = visited.get((fpr, t))
                        if seen is not None and seen <= u:
                            continue
                        visited[(fpr, t)] = u
                    nxt.append(([*prefix, t], t, u))
            frontier = nxt
    return Minimal(fallback, -1, False)
