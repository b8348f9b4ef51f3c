"""Random walk: N executions, each choosing uniformly among the enabled threads."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution
from pfnlab.explore.search.common import Budget, Result, Run, ended
from pfnlab.explore.search.strategy import Strategy, restarting


def explore_random(
    program: Program,
    executions: int = 1000,
    seed: int = 0,
    budget: Budget | None = None,
    *,
    stop_first: bool = True,
) -> Result:
    """Run ``executions`` random schedules from ``seed`` (reproducible)."""
    rng = random.Random(seed)
    return sample(program, executions, budget or Budget(), stop_first, "random",
                  lambda ex, step: rng.choice(ex.enabled()),
                  f"{{n}} random executions (seed {seed})")


def sample(
    program: Program,
    executions: int,
    budget: Budget,
    stop_first: bool,
    name: str,
    choose: Callable[[Execution, int], int],
    what: str,
    reset: Callable[[Execution], None] | None = None,
) -> Result:
    """Run ``executions`` executions, ``choose(ex, step)`` picking each step's thread."""
    run = Run(program, budget)
    stats = run.stats
    try:
        for _ in range(executions):
            if run.clock.out(stats):
                break
            ex = run.execution([])
            if reset is not None:
                reset(ex)
            n = 0
            while not ended(ex, stop_first):
                ex.step(choose(ex, n))
                n += 1
            stats.steps += n
            stats.max_depth = max(stats.max_depth, n)
            new = run.leaf(ex)
            ex.close()
            if new is not None and stop_first:
                break
    except KeyboardInterrupt:
        run.clock.interrupted = True
    cut = run.clock.interrupted or (
        stats.executions < executions and not (stop_first and run.findings))
    coverage = what.format(n=stats.executions)
    if cut:
        coverage += " (interrupted)" if run.clock.interrupted else " (budget reached)"
    return run.result(name, coverage, False)


class RandomWalk(Strategy):
    """``executions`` random schedules from ``seed`` (after a restart: what is left of
    the count)."""

    name = "random"

    def __init__(self, executions: int = 1000, seed: int = 0) -> None:
        self.executions = executions
        self.seed = seed

    @classmethod
    def from_options(cls, **options: Any) -> RandomWalk:
        return cls(options.get("executions", 1000), options.get("seed", 0))

    def search(self, program: Program, budget: Budget, *, stop_first: bool) -> Result:
        return restarting(program, budget, lambda earlier: explore_random(
            program, max(1, self.executions - earlier), self.seed, budget,
            stop_first=stop_first))
