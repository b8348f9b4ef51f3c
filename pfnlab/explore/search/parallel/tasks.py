"""The unit of work of a parallel search: a task (a subtree below the coordinator's
frontier) and what a worker sends back.

:func:`run_task` is what a worker runs: the sequential search (task_search.TaskDpor)
below the task's frozen prefix, with the worker's table of visited states for this round
of this search, merged first with the entries other workers completed that came with the
task, and, in local worker processes, with those other workers publish while it runs
(exchange.py). See coordinator.py for the scheme and docs/reductions.md section 12 for why
it is sound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from pfnlab.explore.collect import collecting
from pfnlab.explore.findings import Finding
from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Footprint
from pfnlab.explore.search.common import Budget, Stats
from pfnlab.explore.search.gcpolicy import searching
from pfnlab.explore.search.parallel.exchange import current_endpoint
from pfnlab.explore.search.parallel.task_search import TaskDpor
from pfnlab.explore.search.visited import VisitedTable


@dataclass(frozen=True)
class Task:
    """A subtree to explore: the schedule reaching its root, the root's sleep set and
    hints, the fields invariants read (``visible``), the promoted stable fields."""

    prefix: tuple[int, ...]
    sleep: tuple[tuple[int, Footprint], ...]
    follow: frozenset[tuple[int, ...]]
    visible: frozenset[tuple[int, str]]
    promoted: frozenset[str]
    budget: Budget
    stop_first: bool
    collect: bool
    cache: bool = True
    #: the round of the search this task belongs to: workers keep visited states for it
    #: only (a state pruned by the cache must have had its subtree explored, and its final
    #: states and findings collected, in this very search)
    search: str = ""
    #: the coordinator node the task's root hangs from (its frozen nodes are that node's
    #: path); set by the coordinator
    parent: int = 0
    #: visited states other workers completed in this round, for the worker's table
    #: (fingerprint, initial sleep set, summary); attached by the backend
    entries: tuple[tuple[int, frozenset[int], frozenset[Any]], ...] = ()
    #: which worker's tables to use (a process has one worker's; ``InProcess`` simulates
    #: several in one process)
    worker: int = 0
    #: an empty side record (explore/collect.py) per one the coordinator has active: the
    #: worker records into them while the task runs and sends them back
    records: tuple[Any, ...] = field(default=(), compare=False)


@dataclass
class TaskResult:
    """What a task sends back."""

    task: Task
    findings: list[Finding]
    stats: Stats
    goals: set[str]
    final_states: set[Any]
    violations: set[tuple[str, str, str]]
    masked_by: dict[str, int]
    fingerprints: set[int]
    entries: list[tuple[int, frozenset[int], frozenset[Any]]]
    reports: list[tuple[Any, ...]]
    observed: frozenset[tuple[int, str]]
    promoted: frozenset[str]
    cut: bool
    interrupted: bool
    worker: str = ""
    #: the task's side records, filled (merged into the coordinator's)
    records: tuple[Any, ...] = ()
    #: the worker's exchange of visited states so far (its endpoint's counters: entries
    #: sent, received, states asked about and answered) and the stack nodes this task cut
    exchange: dict[str, int] = field(default_factory=dict)


#: a worker's visited states, kept from task to task of one round of one search (then per
#: visibility, in SourceDpor)
_CACHES: dict[str, dict[Any, Any]] = {}
#: a worker's execution, kept from task to task of one search with its initial checkpoint
#: (TaskDpor._execution): its step memo carries over
_POOLS: dict[str, dict[Any, Any]] = {}


def run_task(program: Program, task: Task, endpoint: Any = None) -> TaskResult:
    """Explore one task's subtree (in a worker). ``endpoint`` (default: this process's
    :class:`~pfnlab.explore.search.exchange.Endpoint`, if any) sees every state the
    search completes and may merge other workers' states into the table as it runs; one
    that ``publishes`` them itself leaves the result's ``entries`` empty."""
    program.knowledge.learn_all(task.promoted)
    key = f"{task.search}/{task.worker}"
    if not any(k.startswith(task.search + "/") for k in _CACHES):
        _CACHES.clear()  # another search: the old tables are no use (and unsound to use)
        for pool in _POOLS.values():  # nor its executions (another program's objects)
            for ex, _cp in pool.values():
                ex.close()
        _POOLS.clear()
    caches = _CACHES.setdefault(key, {})
    pool = _POOLS.setdefault(key, {})
    table = caches.setdefault(task.visible, VisitedTable())
    table.merge(task.entries)
    ep = endpoint if endpoint is not None else current_endpoint()
    dpor = TaskDpor(program, task, caches=caches, pool=pool)
    if ep is not None:
        ep.begin(task.search, caches, task.visible)
        dpor.on_complete = ep.completed
        dpor.arrivals = ep.arrivals
        dpor.on_new = ep.visited_new
        dpor.poll_every = ep.poll_every
        if hasattr(ep, "watch"):  # (Ray: batches carry what the task found so far)
            ep.watch(dpor)
    with collecting(*task.records), searching():  # (a Ray worker did not inherit them)
        res = dpor.run()
    entries = []
    if not res.interrupted and frozenset(dpor.visible) == task.visible:
        if ep is not None:
            ep.end()
        if ep is None or not ep.publishes:
            entries = table.shipped(dpor.completed)
    stopped = bool(res.findings) and task.stop_first
    return TaskResult(
        task=task,
        findings=[Finding(f.kind, f.prop, f.message, f.schedule, details=dict(f.details))
                  for f in res.findings],
        stats=res.stats,
        goals=set(res.goals_reached),
        final_states=res.final_states,
        violations=res.violations,
        masked_by=res.masked_by,
        fingerprints=dpor.inserted,
        entries=entries,
        reports=dpor.reports,
        observed=frozenset(dpor.observed),
        promoted=program.knowledge.all(),
        cut=not res.exhaustive and not stopped,
        interrupted=res.interrupted,
        worker=f"pid {os.getpid()}",
        records=task.records,
        exchange={**(ep.counters() if ep is not None else {}), "cuts": dpor.cuts},
    )


class WorkerLost(RuntimeError):
    """A worker died more than its backend retries a task: the search stops there and
    reports what the finished subtrees covered."""


class WorkerDied(RuntimeError):
    """A local worker process died: the coordinator starts the search again (workers.py:
    ``LocalProcesses._recover`` says why running its tasks again is not enough)."""
