"""Brute force: every interleaving, no reduction. The reference the reduced search is tested
against, and the baseline of the benchmark."""

from __future__ import annotations

from pfnlab.explore.findings import HANG, Finding
from pfnlab.explore.program import Program
from pfnlab.explore.search.common import Budget, Clock, Result, Stats, final_state, replay_tids


def explore_brute(
    program: Program,
    budget: Budget | None = None,
    *,
    stop_first: bool = False,
    collect_final_states: bool = True,
) -> Result:
    """Depth-first enumeration of every maximal interleaving (stateless, by re-execution)."""
    budget = budget or Budget()
    clock = Clock(budget)
    stats = Stats()
    goals: set[str] = set()
    findings: dict[tuple[str, str], Finding] = {}
    finals: set[object] = set()
    violations: set[tuple[str, str, str]] = set()
    # stack of (prefix of tids, remaining choices at the end of the prefix)
    ex = replay_tids(program, [], goals=goals, max_steps=budget.max_steps)
    goal_names = [g.name for g in ex.instance.goals]
    stack: list[tuple[list[int], list[int]]] = []
    cut = False

    def leaf(ex_: object) -> bool:
        from pfnlab.explore.runtime import Execution

        assert isinstance(ex_, Execution)
        stats.executions += 1
        if ex_.finding is not None:
            f = ex_.finding
            violations.add((f.kind, f.prop, f.message))
            stats.findings += 1
            if ex_.finding.kind == HANG:
                stats.hangs += 1
            findings.setdefault(ex_.finding.key, ex_.finding)
            return stop_first
        stats.complete += 1
        if collect_final_states:
            finals.add(final_state(ex_))
        return False

    if ex.finding is not None or ex.finished:
        leaf(ex)
        stack = []
    else:
        stack.append(([], list(reversed(ex.enabled()))))
    live = ex
    live_prefix: list[int] | None = []
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
                    live = replay_tids(program, prefix, goals=goals, max_steps=budget.max_steps)
                    stats.steps += len(prefix)
                live.step(tid)
                stats.steps += 1
                new_prefix = [*prefix, tid]
                stats.max_depth = max(stats.max_depth, len(new_prefix))
                if live.finding is not None or live.finished:
                    live_prefix = None
                    if leaf(live):
                        break
                    continue
                live_prefix = new_prefix
                stack.append((new_prefix, list(reversed(live.enabled()))))
    except KeyboardInterrupt:
        clock.interrupted = cut = True
    stats.seconds = clock.elapsed()
    stopped = stop_first and bool(findings)
    if cut:
        coverage = clock.cut(stats)
    elif stopped:
        coverage = f"stopped at the first finding, after {stats.executions} executions"
    else:
        coverage = "exhaustive: every interleaving (brute force, no reduction)"
    return Result(
        program=program.name,
        strategy="brute",
        findings=list(findings.values()),
        coverage=coverage,
        exhaustive=not cut and not stopped,
        stats=stats,
        goals_reached=[g for g in goal_names if g in goals],
        goals_missed=[g for g in goal_names if g not in goals],
        final_states=finals,
        violations=violations,
    )
