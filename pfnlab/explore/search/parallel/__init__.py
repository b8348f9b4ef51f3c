"""One DPOR search on many workers: the coordinator (coordinator.py) runs the sequential
algorithm over the first steps of every execution and hands the subtrees below to workers
(workers.py: local processes, Ray, or simulated in this process), each running the
sequential search below the frozen prefix (task_search.py) with a table of visited states
shared with the others (exchange.py). docs/reductions.md section 12 argues it explores what
the sequential search explores.
"""

from typing import Any

from pfnlab.explore.program import Program
from pfnlab.explore.search.common import Budget, Result
from pfnlab.explore.search.dpor import Dpor
from pfnlab.explore.search.parallel.coordinator import DEPTH, MISSED, Progress, explore_parallel
from pfnlab.explore.search.parallel.tasks import Task, TaskResult, WorkerDied, WorkerLost
from pfnlab.explore.search.parallel.workers import (
    RETRIES,
    InProcess,
    LocalProcesses,
    RayWorkers,
    WorkersNotStarted,
    backend,
    default_workers,
    ray_init,
)

__all__ = [
    "DEPTH",
    "MISSED",
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
