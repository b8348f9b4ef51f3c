"""PCT: probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010).

Each execution gives the threads random distinct priorities and picks ``depth - 1`` random
change points among the first ``k`` steps; the highest-priority enabled thread runs, and at
the i-th change point the running thread's priority drops below every initial priority. A
bug of depth d is found by one execution with probability at least 1 / (n · k^(d-1)).
"""

from __future__ import annotations

import random

from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution
from pfnlab.explore.search.common import Budget, Result
from pfnlab.explore.search.random_walk import sample


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
