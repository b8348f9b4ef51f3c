"""Source-set DPOR with sleep sets and state caching (the ``dpor`` strategy).

search.py is the search (:class:`SourceDpor`: its rounds, the loop over the stack, state
caching); stack.py the stack's events and nodes and what a race adds to a node; races.py
race detection (the clock of each new event, the races it takes part in, blocked threads,
findings that cut an execution short, a cache hit's summary).
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore.program import Program
from pfnlab.explore.search.common import Budget, Result
from pfnlab.explore.search.dpor.search import SourceDpor
from pfnlab.explore.search.strategy import Strategy

__all__ = ["Dpor", "SourceDpor", "explore_dpor"]


def explore_dpor(
    program: Program,
    budget: Budget | None = None,
    *,
    cache: bool = True,
    stop_first: bool = True,
    collect_final_states: bool = False,
) -> Result:
    """Source-set DPOR with sleep sets (and state caching when states hash)."""
    return SourceDpor(
        program,
        budget or Budget(),
        cache=cache,
        stop_first=stop_first,
        collect_final_states=collect_final_states,
    ).run()


class Dpor(Strategy):
    """Source-set DPOR with sleep sets and state caching (``cache``)."""

    name = "dpor"

    def __init__(self, cache: bool = True) -> None:
        self.cache = cache

    @classmethod
    def from_options(cls, **options: Any) -> Dpor:
        return cls(cache=options.get("cache", True))

    def search(self, program: Program, budget: Budget, *, stop_first: bool) -> Result:
        return explore_dpor(program, budget, cache=self.cache, stop_first=stop_first)
