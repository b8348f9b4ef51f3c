"""One DPOR search on many workers: the coordinator (coordinator.py) runs the sequential
algorithm over the first steps of every execution and hands the subtrees below to workers
(workers.py: local processes, Ray, or simulated in this process), each running the
sequential search below the frozen prefix (task_search.py) with a table of visited states
shared with the others (exchange.py). docs/reductions.md section 12 argues it explores what
the sequential search explores.
"""

from pfnlab.explore.search.parallel.coordinator import DEPTH, MISSED, Progress, explore_parallel
from pfnlab.explore.search.parallel.tasks import Task, TaskResult, WorkerDied, WorkerLost
from pfnlab.explore.search.parallel.workers import (
    RETRIES,
    InProcess,
    LocalProcesses,
    RayWorkers,
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
    "Progress",
    "RayWorkers",
    "Task",
    "TaskResult",
    "WorkerDied",
    "WorkerLost",
    "backend",
    "default_workers",
    "explore_parallel",
    "ray_init",
]
