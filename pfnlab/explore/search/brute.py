"""Brute force: every interleaving, no reduction. The reference the reduced search is tested
against, and the baseline of the benchmark."""

from __future__ import annotations

from typing import Any

from pfnlab.explore.program import Program
from pfnlab.explore.search.common import Budget, Clock, Result, Run, Stats, ended
from pfnlab.explore.search.strategy import Strategy, rounds


def explore_brute(
    program: Program,
    budget: Budget | None = None,
    *,
    stop_first: bool = False,
    collect_final_states: bool = True,
) -> Result:
    """Depth-first enumeration of every maximal interleaving (stateless, by re-execution).

    What is learnt about the program (a stable field written under a reader, an object with
    guarded fields freed: knowledge.py) changes what a step is, so the enumeration starts
    again with it, as DPOR's rounds do (strategy.rounds); the executions of every round
    count."""
    budget = budget or Budget()
    last: list[tuple[Result, str, bool]] = []

    def one(clock: Clock) -> Stats:
        res = _enumerate(program, budget, stop_first, collect_final_states, clock)
        last[:] = [res]
        return res[0].stats

    clock, _n, stats = rounds(program, budget, one)
    res, how, cut = last[0]
    if cut:
        res.coverage = clock.cut(stats)
    elif how == "stopped":
        res.coverage = f"stopped at the first finding, after {stats.executions} executions"
    res.interrupted = clock.interrupted
    return res


def _enumerate(program: Program, budget: Budget, stop_first: bool,
               collect_final_states: bool, clock: Clock) -> tuple[Result, str, bool]:
    """One round of :func:`explore_brute` (its result, how it ended, whether a budget, a
    restart or Ctrl-C cut it)."""
    run = Run(program, budget)
    run.clock = clock
    stats = run.stats
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
    coverage = "exhaustive: every interleaving (brute force, no reduction)"
    res = run.result("brute", coverage, not cut and not stopped)
    return res, "stopped" if stopped else "", cut


class Brute(Strategy):
    """Every interleaving, no reduction: the reference the reduced search is tested
    against."""

    name = "brute"

    @classmethod
    def from_options(cls, **options: Any) -> Brute:
        return cls()

    def search(self, program: Program, budget: Budget, *, stop_first: bool) -> Result:
        return explore_brute(program, budget, stop_first=stop_first,
                             collect_final_states=False)
