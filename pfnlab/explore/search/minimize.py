"""Minimal counterexamples: fewest preemptions first, then fewest steps.

For k = 0, 1, 2 … a breadth-first search over schedules with at most k preemptions looks for
an execution that shows the same finding (same kind and property). Breadth-first order makes
the first one found the shortest among those with ≤ k preemptions; trying k upward makes it
the one with fewest preemptions. States are cached per (state, running thread) with the
fewest preemptions seen. A node budget bounds the work; past it the original execution is
kept and the report says it is not proven minimal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution
from pfnlab.explore.search.common import replay_tids

#: executions the breadth-first frontier keeps open (each holds its threads' stacks)
_MAX_LIVE = 2_000


def _close(frontier: list[tuple[list[int], int, int, Execution | None]]) -> None:
    for _p, _l, _u, ex in frontier:
        if ex is not None:
            ex.close()


@dataclass
class Minimal:
    """A minimal schedule (as tids) and in what sense it is minimal."""

    tids: list[int]
    preemptions: int
    proven: bool
    timed_out: bool = False   # the deadline cut it (else the node budget, if not proven)


def minimize(
    program: Program,
    key: tuple[str, str],
    fallback: list[int],
    *,
    max_preemptions: int = 4,
    node_budget: int = 20_000,
    max_steps: int = 10_000,
    deadline: float | None = None,
) -> Minimal:
    """The schedule with fewest preemptions, then fewest steps, that shows finding ``key``.

    The search below runs executions the reduced search did not, and one may promote a
    stable field (stable.py): from then on its reads are steps, so an execution begun
    before (and the schedule it gives) no longer replays as the same execution. The
    minimisation then starts again under the new steps, as the searches do (promotions
    only grow, so this ends)."""
    while True:
        before = len(program.knowledge)
        m = _minimize(program, key, fallback, max_preemptions=max_preemptions,
                      node_budget=node_budget, max_steps=max_steps, deadline=deadline)
        if len(program.knowledge) == before:
            return m


def _minimize(
    program: Program,
    key: tuple[str, str],
    fallback: list[int],
    *,
    max_preemptions: int,
    node_budget: int,
    max_steps: int,
    deadline: float | None,
) -> Minimal:
    if not fallback:  # shown before any step (while the threads run to their first access)
        return Minimal([], 0, True)
    nodes = 0
    live = 0  # executions kept open in the frontier (memory bound)
    for bound in range(max_preemptions + 1):
        # frontier entries: (prefix, last thread, preemptions used, the execution at the
        # end of the prefix if it was kept open, else None: replayed when expanded)
        frontier: list[tuple[list[int], int, int, Execution | None]] = [([], -1, 0, None)]
        visited: dict[tuple[int, int], int] = {}
        depth = 0
        while frontier:
            depth += 1
            if depth > len(fallback) + 1 and bound > 0:
                _close(frontier)
                live = 0
                break
            nxt: list[tuple[list[int], int, int, Execution | None]] = []
            for i, (prefix, last, used, here) in enumerate(frontier):
                if here is None:
                    here = replay_tids(program, prefix, checks=True, max_steps=max_steps)
                else:
                    live -= 1
                en = here.enabled()
                order = sorted(en, key=lambda t: (t != last, t))
                allowed = []
                for t in order:
                    u = used + (1 if last >= 0 and t != last and last in en else 0)
                    if u <= bound:
                        allowed.append((t, u))
                if not allowed:
                    here.close()
                for k, (t, u) in enumerate(allowed):
                    nodes += 1
                    if deadline is not None and nodes % 64 == 1 and \
                            time.perf_counter() >= deadline:
                        here.close()
                        _close(nxt)
                        _close(frontier[i + 1:])
                        return Minimal(fallback, -1, False, timed_out=True)
                    if nodes > node_budget:
                        here.close()
                        _close(nxt)
                        _close(frontier[i + 1:])
                        return Minimal(fallback, -1, False)
                    # the last child steps the prefix's own execution: no replay
                    ex = here if k == len(allowed) - 1 else replay_tids(
                        program, prefix, checks=True, max_steps=max_steps)
                    ex.step(t)
                    if ex.found(key) is not None:
                        ex.close()
                        if ex is not here:
                            here.close()
                        _close(nxt)
                        _close(frontier[i + 1:])
                        return Minimal([*prefix, t], u, True)
                    if ex.finding is not None or ex.finished:
                        ex.close()
                        continue
                    fpr = ex.fingerprint()
                    if fpr is not None:
                        seen = visited.get((fpr, t))
                        if seen is not None and seen <= u:
                            ex.close()
                            continue
                        visited[(fpr, t)] = u
                    if live < _MAX_LIVE:
                        live += 1
                        nxt.append(([*prefix, t], t, u, ex))
                    else:
                        ex.close()
                        nxt.append(([*prefix, t], t, u, None))
            frontier = nxt
    return Minimal(fallback, -1, False)
