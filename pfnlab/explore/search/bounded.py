"""Iterative context bounding: all schedules with at most k preemptions, for k = 0, 1, 2 …

A preemption is a switch away from a thread that could have taken its next step. Bounds are
tried in increasing order, so the first finding has the fewest preemptions any execution
showing it needs. States are cached per (state, running thread) with the fewest preemptions
they were reached with, so the search stays exhaustive for each bound.
"""

from __future__ import annotations

from pfnlab.explore.findings import HANG, Finding
from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution
from pfnlab.explore.search.common import Budget, Clock, Result, Stats, replay_tids


def explore_bounded(
    program: Program,
    max_preemptions: int = 2,
    budget: Budget | None = None,
    *,
    stop_first: bool = True,
    cache: bool = True,
) -> Result:
    """Explore every schedule with ≤ k preemptions, for k = 0 … ``max_preemptions``."""
    budget = budget or Budget()
    clock = Clock(budget)
    stats = Stats()
    goals: set[str] = set()
    findings: dict[tuple[str, str], Finding] = {}
    probe = replay_tids(program, [], goals=goals, max_steps=budget.max_steps)
    goal_names = [g.name for g in probe.instance.goals]
    stats.caching = cache and probe.hashable
    done_bound = -1
    found_bound = -1
    cut = False
    for bound in range(max_preemptions + 1):
        visited: dict[tuple[int, int], int] = {}
        try:
            cut = _one_bound(program, bound, budget, clock, stats, goals, findings, visited,
                             stop_first, cache)
        except KeyboardInterrupt:
            clock.interrupted = cut = True
        stats.states = max(stats.states, len(visited))
        if cut:
            break
        done_bound = bound
        if findings and stop_first:
            found_bound = bound
            break
    stats.seconds = clock.elapsed()
    if done_bound < 0:
        coverage = clock.cut(stats) + " (not even every 0-preemption schedule)"
    elif found_bound >= 0:
        fewer = f"; none with ≤ {found_bound - 1}" if found_bound else ""
        coverage = f"stopped at the first finding, with {found_bound} preemptions{fewer}"
    else:
        coverage = f"all schedules with ≤ {done_bound} preemptions"
        if cut:
            why = "interrupted" if clock.interrupted else "budget reached"
            coverage += f", and part of those with {done_bound + 1} ({why})"
    return Result(
        program=program.name,
        strategy="bounded",
        findings=list(findings.values()),
        coverage=coverage,
        exhaustive=False,
        stats=stats,
        goals_reached=[g for g in goal_names if g in goals],
        goals_missed=[g for g in goal_names if g not in goals],
    )


def _one_bound(
    program: Program,
    bound: int,
    budget: Budget,
    clock: Clock,
    stats: Stats,
    goals: set[str],
    findings: dict[tuple[str, str], Finding],
    visited: dict[tuple[int, int], int],
    stop_first: bool,
    cache: bool,
) -> bool:
    # stack entries: (prefix, last tid, preemptions used, remaining choices)
    live = replay_tids(program, [], goals=goals, max_steps=budget.max_steps)
    if live.finding is not None or live.finished:
        stats.executions += 1
        if live.finding is not None:
            findings.setdefault(live.finding.key, live.finding)
        return False
    stack: list[tuple[list[int], int, int, list[tuple[int, int]]]] = [
        ([], -1, 0, _choices(live, -1, 0, bound))
    ]
    live_prefix: list[int] | None = []
    while stack:
        if clock.out(stats):
            return True
        prefix, _last, _used, choices = stack[-1]
        if not choices:
            stack.pop()
            continue
        tid, used = choices.pop()
        if live_prefix != prefix:
            live.close()
            live = replay_tids(program, prefix, goals=goals, max_steps=budget.max_steps)
            stats.steps += len(prefix)
        live.step(tid)
        stats.steps += 1
        new_prefix = [*prefix, tid]
        stats.max_depth = max(stats.max_depth, len(new_prefix))
        if live.finding is not None or live.finished:
            live_prefix = None
            stats.executions += 1
            if live.finding is not None:
                stats.findings += 1
                if live.finding.kind == HANG:
                    stats.hangs += 1
                live.finding.preemptions = used
                findings.setdefault(live.finding.key, live.finding)
                if stop_first:
                    return False
            else:
                stats.complete += 1
            continue
        fpr = live.fingerprint() if cache else None
        if fpr is not None:
            key = (fpr, tid)
            seen = visited.get(key)
            if seen is not None and seen <= used:
                stats.pruned += 1
                stats.executions += 1
                live_prefix = new_prefix
                continue
            visited[key] = used
        live_prefix = new_prefix
        stack.append((new_prefix, tid, used, _choices(live, tid, used, bound)))
    return False


def _choices(ex: Execution, last: int, used: int, bound: int) -> list[tuple[int, int]]:
    """Next threads with the preemptions used after choosing them (popped from the end)."""
    en = ex.enabled()
    out: list[tuple[int, int]] = []
    for t in en:
        if last < 0 or t == last or last not in en:
            out.append((t, used))
        elif used < bound:
            out.append((t, used + 1))
    # continue the running thread first: it goes last in the list (popped first)
    out.sort(key=lambda c: (c[0] == last, -c[0]))
    return out
