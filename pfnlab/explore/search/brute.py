"""Brute force: every interleaving, no reduction. The reference the reduced search is tested
against, and the baseline of the benchmark."""

from __future__ import annotations

from pfnlab.explore.program import Program
from pfnlab.explore.search.common import Budget, Clock, Result, Run, ended


def explore_brute(
    program: Program,
    budget: Budget | None = None,
    *,
    stop_first: bool = False,
    collect_final_states: bool = True,
) -> Result:
    """Depth-first enumeration of every maximal interleaving (stateless, by re-execution).

    A promotion (a stable field written while pinned, an object with guarded fields freed:
    stable.py) changes what a step is, so the enumeration starts again with it, as DPOR's
    rounds do; the executions of every round count."""
    earlier = 0
    while True:
        res, clock = _enumerate(program, budget or Budget(), stop_first, collect_final_states,
                                earlier)
        if not (clock.restart or clock.promoted_since()) or clock.interrupted:
            return res
        earlier = res.stats.executions  # (this round's result is dropped: old steps)


def _enumerate(program: Program, budget: Budget, stop_first: bool,
               collect_final_states: bool, earlier: int) -> tuple[Result, Clock]:
    """One round of :func:`explore_brute`; ``clock.restart`` says a promotion cut it."""
    run = Run(program, budget)
    stats, clock = run.stats, run.clock
    clock.earlier = earlier
    live = run.execution([])
    # stack of (prefix of tids, remaining choices at the end of the prefix)
    stack: list[tuple[list[int], list[int]]] = []
    if ended(live, stop_first):
        run.leaf(live, collect=collect_final_states)
    else:
        stack.append(([], list(reversed(live.enabled()))))
    live_prefix: list[int] | None = []
    cut = stopped = False
    try:
        while stack:
            if clock.out(stats):
                cut = True
                break
            prefix, choices = stack[-1]
            if not choices:
                stack.pop()
                continue
            tid = choices.pop()
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
                if run.leaf(live, collect=collect_final_states) is not None and stop_first:
                    stopped = True
                    break
                continue
            live_prefix = new_prefix
            stack.append((new_prefix, list(reversed(live.enabled()))))
    except KeyboardInterrupt:
        clock.interrupted = cut = True
    stats.executions += earlier
    clock.earlier = 0
    if cut:
        coverage = clock.cut(stats)
    elif stopped:
        coverage = f"stopped at the first finding, after {stats.executions} executions"
    else:
        coverage = "exhaustive: every interleaving (brute force, no reduction)"
    return run.result("brute", coverage, not cut and not stopped), clock
