"""Random walk: N executions, each choosing uniformly among the enabled threads."""

from __future__ import annotations

import random

from pfnlab.explore.findings import HANG, Finding
from pfnlab.explore.program import Program
from pfnlab.explore.search.common import Budget, Clock, Result, Stats, replay_tids


def explore_random(
    program: Program,
    executions: int = 1000,
    seed: int = 0,
    budget: Budget | None = None,
    *,
    stop_first: bool = True,
) -> Result:
    """Run ``executions`` random schedules from ``seed`` (reproducible)."""
    budget = budget or Budget()
    clock = Clock(budget)
    rng = random.Random(seed)
    return _sample(program, executions, budget, clock, stop_first, "random",
                   lambda ex, step: rng.choice(ex.enabled()),
                   f"{{n}} random executions (seed {seed})")


def _sample(program: Program, executions: int, budget: Budget, clock: Clock, stop_first: bool,
            name: str, choose: object, what: str, reset: object = None) -> Result:
    stats = Stats()
    goals: set[str] = set()
    findings: dict[tuple[str, str], Finding] = {}
    goal_names: list[str] = []
    try:
        _run_samples(program, executions, budget, clock, stop_first, choose, reset, stats,
                     goals, findings, goal_names)
    except KeyboardInterrupt:
        clock.interrupted = True
    cut = clock.interrupted or (stats.executions < executions and not (stop_first and findings))
    stats.seconds = clock.elapsed()
    coverage = what.format(n=stats.executions)
    if cut:
        coverage += " (interrupted)" if clock.interrupted else " (budget reached)"
    return Result(
        program=program.name,
        strategy=name,
        findings=list(findings.values()),
        coverage=coverage,
        exhaustive=False,
        stats=stats,
        goals_reached=[g for g in goal_names if g in goals],
        goals_missed=[g for g in goal_names if g not in goals],
    )


def _run_samples(program: Program, executions: int, budget: Budget, clock: Clock,
                 stop_first: bool, choose: object, reset: object, stats: Stats,
                 goals: set[str], findings: dict[tuple[str, str], Finding],
                 goal_names: list[str]) -> None:
    for _ in range(executions):
        if clock.out(stats):
            return
        ex = replay_tids(program, [], goals=goals, max_steps=budget.max_steps)
        goal_names[:] = [g.name for g in ex.instance.goals]
        if callable(reset):
            reset(ex)
        n = 0
        while ex.finding is None and not ex.finished:
            assert callable(choose)
            ex.step(choose(ex, n))
            n += 1
        stats.steps += n
        stats.max_depth = max(stats.max_depth, n)
        stats.executions += 1
        if ex.finding is not None:
            stats.findings += 1
            if ex.finding.kind == HANG:
                stats.hangs += 1
            findings.setdefault(ex.finding.key, ex.finding)
            ex.close()
            if stop_first:
                return
        else:
            stats.complete += 1
            ex.close()
