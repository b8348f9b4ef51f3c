"""Search strategies over a program's executions, and the one entry point :func:`explore`.

Strategies: ``dpor`` (exhaustive, reduced), ``optimal`` (exhaustive, reduced to one
execution per Mazurkiewicz trace, no state caching), ``brute`` (exhaustive, no reduction),
``bounded`` (iterative preemption bounding), ``random`` (random walk), ``pct``; and a
``swarm`` of diversified random, PCT and bounded searches (swarm.py: given to
:func:`explore` as a :class:`~pfnlab.explore.search.swarm.Swarm`, it is not a name here).
Every finding comes back with a labelled schedule, its recorded trace, its preemption count
and a statement of minimality.
"""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

from pfnlab.explore.findings import Finding
from pfnlab.explore.program import Program
from pfnlab.explore.schedule import Schedule, Step
from pfnlab.explore.search.bounded import Bounded
from pfnlab.explore.search.brute import Brute
from pfnlab.explore.search.common import Budget, Result, Stats, reporting
from pfnlab.explore.search.dpor import Dpor
from pfnlab.explore.search.gcpolicy import searching
from pfnlab.explore.search.minimize import minimize
from pfnlab.explore.search.optimal import Optimal
from pfnlab.explore.search.pct import Pct
from pfnlab.explore.search.random_walk import RandomWalk
from pfnlab.explore.search.replay import ReplayResult, replay
from pfnlab.explore.search.strategy import Strategy

#: the strategies by name (strategy.py: one file each)
STRATEGY_CLASSES: dict[str, type[Strategy]] = {
    s.name: s for s in (Dpor, Optimal, Brute, Bounded, RandomWalk, Pct)}
STRATEGIES = tuple(STRATEGY_CLASSES)

__all__ = [
    "STRATEGIES",
    "STRATEGY_CLASSES",
    "Budget",
    "ReplayResult",
    "Result",
    "Stats",
    "Strategy",
    "explore",
    "replay",
    "reporting",
]


@searching()  # the collector's thresholds for a large, long-lived heap (gcpolicy.py)
def explore(
    program: Program,
    *,
    strategy: str | Strategy = "dpor",
    budget: Budget | None = None,
    stop_first: bool = True,
    minimal: bool = True,
    preemptions: int = 2,
    executions: int = 1000,
    seed: int = 0,
    depth: int = 3,
    cache: bool = True,
    backend: Any = None,
) -> Result:
    """Search ``program``'s interleavings and return findings with their traces.

    ``stop_first`` stops at the first finding; otherwise every distinct finding (by kind and
    property) is collected. With ``minimal`` each finding's execution is replaced by one with
    the fewest preemptions, then the fewest steps, that shows the same finding. With a
    ``backend`` (``workers.backend(jobs, ray)``) a ``dpor`` search without an execution
    budget is split among its workers (parallel/). ``strategy`` is a name of
    :data:`STRATEGIES` or a :class:`Strategy` already configured (a swarm: swarm.py).
    """
    budget = budget or Budget()
    start = time.perf_counter()
    if isinstance(strategy, Strategy):
        chosen = strategy
    elif strategy in STRATEGIES:
        chosen = STRATEGY_CLASSES[strategy].from_options(
            cache=cache, preemptions=preemptions, executions=executions, seed=seed,
            depth=depth)
    else:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if backend is not None:  # a DPOR search split among the backend's workers
        from pfnlab.explore.search.parallel import Parallel

        chosen = Parallel.wrap(chosen, backend)
    res = chosen.search(program, budget, stop_first=stop_first)
    interrupted = res.interrupted = res.interrupted or res.coverage.startswith("interrupted")
    # the stable fields whose reads were steps when these were found: a replay of their
    # schedules must step the same way (stable.py; saved in JSON reports)
    for f in res.findings:
        f.details["promoted"] = sorted(program.knowledge.steps())
    # the time budget covers the work after the search too: past it, a finding keeps the
    # execution the search found (replayed for its trace, one execution) unminimised
    deadline = start + budget.seconds if budget.seconds is not None else None
    with suppress(KeyboardInterrupt):  # a second Ctrl-C: keep the findings unexplained
        res.findings = [
            explain(program, f, minimal=minimal and not interrupted, max_steps=budget.max_steps,
                    deadline=deadline)
            for f in res.findings
        ]
    return res


def explain(program: Program, finding: Finding, *, minimal: bool = True,
            max_steps: int = 10_000, deadline: float | None = None) -> Finding:
    """Minimise ``finding``'s execution (optionally, until ``deadline``, a
    ``time.perf_counter()`` value) and record its labelled trace."""
    from pfnlab.explore.runtime import Execution

    probe = Execution(program, max_steps=max_steps)
    names = probe.thread_names()
    probe.close()
    tids = [names.index(s.thread) for s in finding.schedule]
    note = "as found by the search (not minimised)"
    if minimal and deadline is not None and time.perf_counter() >= deadline:
        note = "as found by the search (not minimised: the time budget ran out)"
    elif minimal:
        m = minimize(program, finding.key, tids, max_steps=max_steps, deadline=deadline)
        tids = m.tids
        if m.proven:
            note = (f"minimal: fewest preemptions ({m.preemptions}), then fewest steps "
                    f"({len(tids)}) among executions showing this finding")
        elif m.timed_out:
            note = "not proven minimal: the time budget ran out while minimising"
        else:
            note = "not proven minimal: the minimisation budget ran out"
    rr = replay(program, Schedule(Step(names[t], "") for t in tids), max_steps=max_steps)
    f = rr.find(finding.key)
    if f is None:
        finding.minimal = "could not be reproduced by replay: is the model deterministic?"
        return finding
    f.trace = rr.trace
    f.preemptions = rr.preemptions
    f.minimal = note
    f.details = {**finding.details, **f.details}
    return f
