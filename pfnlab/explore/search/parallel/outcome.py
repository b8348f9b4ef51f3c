"""What a round of a parallel search reports: its progress as it goes, and its result at
the end (engine-internal; coordinator.py).

The result is the coordinator's own run with every task's statistics, goals, final states,
violations and masked findings summed into it, per (kind, property) the finding with the
shortest schedule whichever worker finished first (:func:`keep_shortest`), in an order that
does not depend on the order tasks finished in, and the coverage line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pfnlab.explore.findings import Finding
from pfnlab.explore.search.common import INTERRUPTED_BY, Result, Run
from pfnlab.explore.search.parallel.tasks import TaskResult
from pfnlab.explore.search.strategy import SUMMED


@dataclass
class Progress:
    """What the coordinator reports as it goes (``on_progress``)."""

    workers: int
    tasks_done: int = 0
    tasks_out: int = 0
    tasks_made: int = 0
    executions: int = 0
    states: int = 0


def round_result(r: Run, results: list[TaskResult], states: set[int], *, cut: bool,
                 interrupted: bool, stop_first: bool, start: float, backend: Any,
                 tasks_made: int, depth: int, lost: str = "", earlier: int = 0) -> Result:
    """The result of a round: the coordinator's run ``r`` with the tasks' ``results``
    summed into it, ``states`` the fingerprints of every state seen; ``lost``: why the
    workers were lost, when that stopped the search; ``earlier``: the executions of the
    search's earlier rounds (a partial coverage line counts every round's)."""
    st = r.stats
    for res in results:
        for k in SUMMED:
            setattr(st, k, getattr(st, k) + getattr(res.stats, k))
        st.max_depth = max(st.max_depth, res.stats.max_depth)
        st.caching = st.caching or res.stats.caching
        r.goals |= res.goals
        r.final_states |= res.final_states
        r.violations |= res.violations
        for p, n in res.masked_by.items():
            r.masked_by[p] = r.masked_by.get(p, 0) + n
    st.states = len(states)
    # in an order that does not depend on which task finished first
    r.findings = dict(sorted(r.findings.items(), key=lambda kv: rank(kv[1])))
    r.clock.interrupted = interrupted
    stopped = bool(r.findings) and stop_first
    elapsed = time.perf_counter() - start
    if cut or interrupted:
        why = (f"interrupted ({INTERRUPTED_BY[0]})" if interrupted
               else f"stopped ({lost})" if lost else "budget reached")
        coverage = (f"{why} after {earlier + st.executions} executions ({elapsed:.1f} s): "
                    "partial, no claim beyond them")
    elif stopped:
        coverage = f"stopped at the first finding, after {st.executions} executions"
    else:
        how = "source-set DPOR with sleep sets"
        if st.caching:
            how += f" and state caching ({st.states} states)"
        coverage = (f"exhaustive: every interleaving up to equivalence ({how}; "
                    f"{backend.workers} workers ({backend.name}), "
                    f"{tasks_made} subtrees below depth {depth})")
    return r.result("dpor", coverage, not (cut or interrupted) and not stopped)


def rank(x: Finding) -> tuple[int, list[str], str, str]:
    return (len(x.schedule), [s.thread for s in x.schedule], x.kind, x.prop)


def keep_shortest(into: dict[tuple[str, str], Finding], f: Finding) -> None:
    """Keep, per (kind, property), the finding with the shortest schedule (then the
    smallest, thread by thread): the same whichever worker finished first."""
    old = into.get(f.key)
    if old is None or rank(f) < rank(old):
        into[f.key] = f

