"""The Mazurkiewicz traces a DPOR search explored, for comparing two searches trace by trace.

Each complete execution is named by its canonical linearisation: repeatedly the event of
the lowest thread whose happens-before predecessors (the search's own vector clocks:
program order and footprint dependence) have all been taken, each event as (thread,
footprint). Two executions get the same name iff they are the same trace.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution
from pfnlab.explore.search import Budget
from pfnlab.explore.search.dpor import SourceDpor
from pfnlab.explore.search.dpor.stack import Event
from pfnlab.explore.search.optimal import OptimalDpor

Trace = tuple[tuple[int, Any], ...]


def canonical(events: list[Event]) -> Trace:
    """The canonical linearisation of ``events`` (see the module docstring)."""
    n = len(events)
    done = [False] * n
    out: list[tuple[int, Any]] = []
    while len(out) < n:
        best = -1
        for j in range(n):
            if done[j]:
                continue
            ej = events[j]
            ready = all(done[i] or events[i].seq > ej.clock[events[i].tid] for i in range(j))
            if ready and (best < 0 or ej.tid < events[best].tid):
                best = j
        done[best] = True
        out.append((events[best].tid, events[best].fp))
    return tuple(out)


def traces(program: Program, optimal: bool, rounds: int | None = 1) -> set[Trace]:
    """The traces of the complete executions that source-DPOR (uncached) or optimal DPOR
    explores of ``program`` (every finding) in its last round (``rounds`` expected, if
    given)."""
    seen: set[Trace] = set()

    class Recording(OptimalDpor if optimal else SourceDpor):  # type: ignore[misc]
        def _reset(self, clock: Any) -> None:
            super()._reset(clock)
            seen.clear()

        def _execution_ended(self, ex: Execution) -> None:
            if ex.finished:
                seen.add(canonical(self.events))
            super()._execution_ended(ex)

    kw: dict[str, Any] = {} if optimal else {"cache": False}
    res = Recording(program, Budget(), stop_first=False, **kw).run()
    assert res.exhaustive, res.coverage
    assert rounds is None or res.stats.rounds == rounds, res.stats.rounds
    return seen
