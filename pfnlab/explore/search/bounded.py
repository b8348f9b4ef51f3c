"""Iterative context bounding: all schedules with at most k preemptions, for k = 0, 1, 2 …

A preemption is a switch away from a thread that could have taken its next step. Bounds are
tried in increasing order, so the first finding has the fewest preemptions any execution
showing it needs. States are cached per (state, running thread) with the fewest preemptions
they were reached with, so the search stays exhaustive for each bound.

Among the threads a step may run, the running thread goes first, then the others by a
priority order: by default the order the scenario creates them in; ``order`` (a seed)
shuffles it. A search that covers its bound covers the same schedules in any order, but one
an execution budget cuts covers a different part of them (what a swarm's members vary:
swarm.py).
"""

from __future__ import annotations

import random
from typing import Any

from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution
from pfnlab.explore.search.common import Budget, Result, Run, ended
from pfnlab.explore.search.strategy import Strategy, restarting


def explore_bounded(
    program: Program,
    max_preemptions: int = 2,
    budget: Budget | None = None,
    *,
    stop_first: bool = True,
    cache: bool = True,
    order: int | None = None,
) -> Result:
    """Explore every schedule with ≤ k preemptions, for k = 0 … ``max_preemptions``,
    the threads tried in the priority order drawn from seed ``order`` (None: creation
    order)."""
    run = Run(program, budget or Budget())
    probe = run.execution([])
    run.stats.caching = cache and probe.hashable
    names = probe.thread_names()
    probe.close()
    rank = list(range(len(names)))
    if order is not None:
        random.Random(order).shuffle(rank)
    done_bound = found_bound = -1
    cut = False
    for bound in range(max_preemptions + 1):
        visited: dict[tuple[int, int], int] = {}
        try:
            cut = _one_bound(run, bound, visited, stop_first, cache, rank)
        except KeyboardInterrupt:
            run.clock.interrupted = cut = True
        run.stats.states = max(run.stats.states, len(visited))
        if cut:
            break
        done_bound = bound
        if run.findings and stop_first:
            found_bound = bound
            break
    if done_bound < 0:
        coverage = run.clock.cut(run.stats) + " (not even every 0-preemption schedule)"
    elif found_bound >= 0:
        fewer = f"; none with ≤ {found_bound - 1}" if found_bound else ""
        coverage = f"stopped at the first finding, with {found_bound} preemptions{fewer}"
    else:
        coverage = f"all schedules with ≤ {done_bound} preemptions"
        if cut:
            why = "interrupted" if run.clock.interrupted else "budget reached"
            coverage += f", and part of those with {done_bound + 1} ({why})"
    if order is not None:
        first = sorted(range(len(names)), key=lambda t: rank[t])
        coverage += f" (threads tried in the order {', '.join(names[t] for t in first)})"
    return run.result("bounded", coverage, False)


def _one_bound(run: Run, bound: int, visited: dict[tuple[int, int], int], stop_first: bool,
               cache: bool, rank: list[int]) -> bool:
    """Every schedule with ≤ ``bound`` preemptions; True if the budget cut it."""
    stats = run.stats
    live = run.execution([])
    if ended(live, stop_first):
        run.leaf(live)
        return False
    # stack entries: (prefix, remaining (tid, preemptions used) choices)
    stack: list[tuple[list[int], list[tuple[int, int]]]] = [
        ([], _choices(live, -1, 0, bound, rank))]
    live_prefix: list[int] | None = []
    while stack:
        if run.clock.out(stats):
            return True
        prefix, choices = stack[-1]
        if not choices:
            stack.pop()
            continue
        tid, used = choices.pop()
        if live_prefix != prefix:
            live.close()
            live = run.execution(prefix)
            stats.steps += len(prefix)
        live.step(tid)
        stats.steps += 1
        new_prefix = [*prefix, tid]
        stats.max_depth = max(stats.max_depth, len(new_prefix))
        if ended(live, stop_first):
            live_prefix = None
            for f in live.findings():
                f.preemptions = used
            if run.leaf(live) is not None and stop_first:
                return False
            continue
        live_prefix = new_prefix
        fpr = live.fingerprint() if cache else None
        if fpr is not None:
            seen = visited.get((fpr, tid))
            if seen is not None and seen <= used:
                run.absorb(live)
                stats.pruned += 1
                stats.executions += 1
                continue
            visited[(fpr, tid)] = used
        stack.append((new_prefix, _choices(live, tid, used, bound, rank)))
    return False


def _choices(ex: Execution, last: int, used: int, bound: int,
             rank: list[int]) -> list[tuple[int, int]]:
    """Next threads with the preemptions used after choosing them (popped from the end:
    the running thread first, then the others by ``rank``, lowest first)."""
    en = ex.enabled()
    out: list[tuple[int, int]] = []
    for t in en:
        if last < 0 or t == last or last not in en:
            out.append((t, used))
        elif used < bound:
            out.append((t, used + 1))
    # continue the running thread first: it goes last in the list (popped first)
    out.sort(key=lambda c: (c[0] == last, -rank[c[0]]))
    return out


class Bounded(Strategy):
    """Every schedule with at most ``preemptions`` preemptions (iterative context
    bounding), states cached per (state, running thread) when ``cache``, the threads tried
    in the priority order drawn from seed ``order`` (None: the order they are created in)."""

    name = "bounded"

    def __init__(self, preemptions: int = 2, cache: bool = True,
                 order: int | None = None) -> None:
        self.preemptions = preemptions
        self.cache = cache
        self.order = order

    @classmethod
    def from_options(cls, **options: Any) -> Bounded:
        return cls(options.get("preemptions", 2), options.get("cache", True))

    def search(self, program: Program, budget: Budget, *, stop_first: bool) -> Result:
        return restarting(program, budget, lambda _earlier: explore_bounded(
            program, self.preemptions, budget, stop_first=stop_first, cache=self.cache,
            order=self.order))
