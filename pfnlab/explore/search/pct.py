"""PCT: probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010).

Each execution gives the threads random distinct priorities and picks ``depth - 1`` random
change points among the first ``k`` steps; the highest-priority enabled thread runs, and at
the i-th change point the running thread's priority drops below every initial priority. A
bug of depth d is found by one execution with probability at least 1 / (n · k^(d-1)).
"""

from __future__ import annotations

import random
from typing import Any

from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution
from pfnlab.explore.search.common import Budget, Result
from pfnlab.explore.search.random_walk import sample
from pfnlab.explore.search.strategy import Strategy, restarting


def explore_pct(
    program: Program,
    executions: int = 1000,
    depth: int = 3,
    seed: int = 0,
    budget: Budget | None = None,
    *,
    stop_first: bool = True,
    steps_hint: int = 64,
) -> Result:
    """Run ``executions`` PCT schedules of bug depth ``depth`` from ``seed``."""
    rng = random.Random(seed)
    state: dict[str, object] = {"k": steps_hint}
    prio: dict[int, int] = {}
    changes: list[int] = []

    def reset(ex: Execution) -> None:
        n = len(ex.threads)
        order = list(range(n))
        rng.shuffle(order)
        prio.clear()
        for rank, tid in enumerate(order):
            prio[tid] = depth + rank
        k = int(state["k"])  # type: ignore[call-overload]
        changes[:] = sorted(rng.sample(range(1, max(k, depth) + 1), depth - 1))

    def choose(ex: Execution, step: int) -> int:
        en = ex.enabled()
        best = max(en, key=lambda t: prio[t])
        for i, c in enumerate(changes):
            if c == step:
                prio[best] = depth - 1 - i
                best = max(en, key=lambda t: prio[t])
        if step + 1 > int(state["k"]):  # type: ignore[call-overload]
            state["k"] = step + 1
        return best

    return sample(program, executions, budget or Budget(), stop_first, "pct", choose,
                  f"{{n}} PCT executions (depth {depth}, seed {seed})", reset)


class Pct(Strategy):
    """``executions`` PCT schedules of bug depth ``depth`` from ``seed`` (after a restart:
    what is left of the count)."""

    name = "pct"

    def __init__(self, executions: int = 1000, depth: int = 3, seed: int = 0) -> None:
        self.executions = executions
        self.depth = depth
        self.seed = seed

    @classmethod
    def from_options(cls, **options: Any) -> Pct:
        return cls(options.get("executions", 1000), options.get("depth", 3),
                   options.get("seed", 0))

    def search(self, program: Program, budget: Budget, *, stop_first: bool) -> Result:
        return restarting(program, budget, lambda earlier: explore_pct(
            program, max(1, self.executions - earlier), self.depth, self.seed, budget,
            stop_first=stop_first))
