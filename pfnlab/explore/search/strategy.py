"""What every search strategy is, and the one loop that restarts them.

A :class:`Strategy` searches a program's executions; each lives in a file of its own
(dpor/, brute.py, bounded.py, random_walk.py, pct.py; the parallel search in parallel/)
and :func:`~pfnlab.explore.search.explore` picks one by name (:data:`STRATEGIES` in
``search/__init__``). Every one runs in *rounds* (:func:`rounds`): what a search learns
about the program (knowledge.py: a promoted field, a freed class, ...) changes its steps,
so the round under way ends and a new one starts with it; a strategy may ask for more
rounds of its own (DPOR: fields its checks read that no step treated as visible). The
work of every round counts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from pfnlab.explore.program import Program
from pfnlab.explore.search.common import Budget, Clock, Result, Stats

#: the statistics every round adds to (the others are the last round's)
SUMMED = ("executions", "complete", "pruned", "sleep_blocked", "hangs", "findings", "steps",
          "memoised")


class Strategy(ABC):
    """One way of searching a program's executions."""

    #: the name ``explore(strategy=...)`` and the command line know it by
    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_options(cls, **options: Any) -> Strategy:
        """The strategy, configured from the options ``explore()`` takes (each strategy
        picks those it knows: ``cache``, ``preemptions``, ``executions``, ``seed``,
        ``depth``). A search on many workers wraps DPOR (parallel.Parallel)."""

    @abstractmethod
    def search(self, program: Program, budget: Budget, *, stop_first: bool) -> Result:
        """Search ``program`` within ``budget`` (every round: :func:`rounds`); with
        ``stop_first``, stop at the first finding."""


def rounds(program: Program, budget: Budget, one: Callable[[Clock], Stats],
           more: Callable[[], bool] = lambda: False) -> tuple[Clock, int, Stats]:
    """Run ``one(clock)`` (a round, returning its statistics) until a round ends with
    nothing new learnt about ``program`` and ``more()`` asks for no other round. Returns the
    clock (interrupted or not), the number of rounds and the last round's statistics with
    the :data:`SUMMED` ones added up over every round."""
    clock = Clock(budget, program)
    totals: dict[str, int] = {}
    n = 0
    while True:
        n += 1
        stats = one(clock)
        for k in SUMMED:  # every round's work counts, not only the last one's
            totals[k] = totals.get(k, 0) + getattr(stats, k)
        clock.earlier = totals["executions"]
        if (clock.restart or clock.promoted_since()) and not clock.interrupted \
                and not clock.spent():
            # something was learnt about the program: what this round explored used the
            # old steps (with the budget spent, this round's partial coverage is the
            # search's: a new round would explore nothing)
            clock.restarted()
            continue
        if not more():
            break
    for k, v in totals.items():
        setattr(stats, k, v)
    clock.earlier = 0  # now in the statistics
    stats.rounds = n
    return clock, n, stats


def restarting(program: Program, budget: Budget, once: Callable[[int], Result]) -> Result:
    """The rounds of a strategy whose round is a whole search (bounded, random, PCT):
    ``once(earlier)`` again, ``earlier`` the executions of the rounds before, while it
    learns something about the program. The last round's result, every round's work
    added up."""
    last: list[Result] = []
    own = [0]  # the executions of the last round alone

    def one(clock: Clock) -> Stats:
        res = once(clock.earlier)
        last[:] = [res]
        own[0] = res.stats.executions
        if res.interrupted or res.coverage.startswith("interrupted"):
            clock.interrupted = res.interrupted = True
        return res.stats

    rounds(program, budget, one)
    res = last[0]
    before = res.stats.executions - own[0]
    if before:  # the coverage counts the last round's; the statistics every round's
        res.coverage += (f"; {before} more before the search started again with a stable "
                         "field as a scheduling point")
    return res
