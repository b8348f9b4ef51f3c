"""One DPOR search on many workers: the coordinator (coordinator.py) runs the sequential
algorithm over the first steps of every execution and hands the subtrees below to workers
(workers.py: local processes or simulated in this process; ray_actors.py: Ray actors,
sharing through ray_exchange.py, on a cluster ray_cluster.py connects to), each running the
sequential search below the frozen prefix (task_search.py) with a table of visited states
shared with the others (exchange.py). docs/reductions.md section 12 argues it explores what
the sequential search explores. A search is rounds of a coordinator (:func:`explore_parallel`,
here); tree.py is the coordinator's nodes, outcome.py what a round reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution
from pfnlab.explore.search.common import Budget, Clock, Result, Stats
from pfnlab.explore.search.dpor import Dpor
from pfnlab.explore.search.parallel.coordinator import MISSED, Coordinator
from pfnlab.explore.search.parallel.forking import WorkersNotStarted
from pfnlab.explore.search.parallel.outcome import Progress
from pfnlab.explore.search.parallel.ray_actors import RayWorkers
from pfnlab.explore.search.parallel.ray_cluster import RAY_START_INTERRUPTED, ray_init
from pfnlab.explore.search.parallel.tasks import Task, TaskResult, WorkerDied, WorkerLost
from pfnlab.explore.search.parallel.workers import (
    RETRIES,
    InProcess,
    LocalProcesses,
    default_workers,
)
from pfnlab.explore.search.strategy import rounds

__all__ = [
    "DEPTH",
    "MISSED",
    "RAY_START_INTERRUPTED",
    "RETRIES",
    "InProcess",
    "LocalProcesses",
    "Parallel",
    "Progress",
    "RayWorkers",
    "Task",
    "TaskResult",
    "WorkerDied",
    "WorkerLost",
    "WorkersNotStarted",
    "backend",
    "default_workers",
    "explore_parallel",
    "ray_init",
]


#: the frontier: tasks start this many steps below the root (at most; fewer where
#: executions are shorter)
DEPTH = 12


def explore_parallel(
    program: Program,
    budget: Budget,
    backend: Any,
    *,
    stop_first: bool = True,
    collect_final_states: bool = False,
    cache: bool = True,
    depth: int = DEPTH,
    on_progress: Callable[[Progress], None] | None = None,
) -> Result:
    """Source-set DPOR of ``program`` with its subtrees below ``depth`` explored by
    ``backend``'s workers (see coordinator.py): the same findings, final states and
    verdicts as :func:`~pfnlab.explore.search.dpor.explore_dpor`."""
    start = time.perf_counter()
    probe = Execution(program, max_steps=budget.max_steps)
    visible = frozenset(probe.observed)
    probe.close()
    last: list[Coordinator] = []
    results: list[Result] = []

    clocks: list[Clock] = []

    def one(clock: Clock) -> Stats:
        nonlocal visible
        clocks[:] = [clock]
        c = Coordinator(program, budget, backend, stop_first, collect_final_states, cache,
                         depth, visible, start, on_progress)
        c.earlier = clock.earlier
        last[:] = [c]
        results[:] = [c.run()]
        if c.restart and not c.interrupted:  # (with what was learnt, or by itself:)
            visible = visible | c.observed
        return results[0].stats

    def more() -> bool:
        """Another round, with the fields a task observed that no step treated as visible
        (every step so far may be a different step now); none once a budget cut the
        round (no time is left for one)."""
        return last[0].restart and not last[0].interrupted and not clocks[0].spent()

    _clock, _n, _stats = rounds(program, budget, one, more)
    res = results[0]
    res.stats.seconds = time.perf_counter() - start
    return res


def backend(jobs: int, ray: str | None = None) -> LocalProcesses | RayWorkers:
    """The backend for ``--jobs N`` and ``--ray [ADDRESS]`` (``ray`` "" = a local
    instance)."""
    if ray is not None:
        return RayWorkers(jobs or None, ray or None)
    return LocalProcesses(jobs)


class Parallel(Dpor):
    """A DPOR search split among ``backend``'s workers (a wrapper, as shuttle's
    cross-cutting schedulers are): the same findings, verdicts and coverage; with an
    execution budget (which counts the executions of one search) it runs in one process."""

    def __init__(self, backend: Any, cache: bool = True) -> None:
        super().__init__(cache)
        self.backend = backend

    @classmethod
    def wrap(cls, strategy: Any, backend: Any) -> Any:
        """``strategy`` run on ``backend`` when it is DPOR; any other as it is."""
        if isinstance(strategy, Dpor) and not isinstance(strategy, Parallel):
            return cls(backend, strategy.cache)
        return strategy

    def search(self, program: Program, budget: Budget, *, stop_first: bool) -> Result:
        if budget.executions is not None:
            return super().search(program, budget, stop_first=stop_first)
        return explore_parallel(program, budget, self.backend, stop_first=stop_first,
                                cache=self.cache)
