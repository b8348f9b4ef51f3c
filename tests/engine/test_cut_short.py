"""A step whose finding cuts its execution short must not sleep as an ordinary step.

Found by bench/differential.py (seed 1, program 268): thread t0's only step makes an
unstable invariant false, which ends the execution, so thread t1 never runs after it. The
sleep set then held t0 with its footprint, independent of t1's step (a free), so after t1
ran first t0 was asleep and the execution [t1, t0] was sleep-set blocked, never run: what
only that order reaches (a goal; a stable invariant's violation) was missed, a wrong pass.
Every DPOR search must now reach it (the sleep entry of such a step conflicts with every
step: ``common.CUT_SHORT``, ``common.wakes``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pfnlab.explore import Check, Field, Ghost, Instance, Lock, Program, Shared, atomic, free
from pfnlab.explore import is_freed as freed
from pfnlab.explore.search import Budget, Result, explore
from pfnlab.explore.search.brute import explore_brute
from pfnlab.explore.search.common import CUT_SHORT, dependent, wakes
from pfnlab.explore.search.parallel import InProcess, explore_parallel


class Var(Shared):
    v = Field(0)


class Note(Shared):
    n = Ghost(0)


def build() -> Instance:
    x, lock, note = Var("x"), Lock("L", mover=False), Note("note")

    def t0() -> None:
        atomic(x, "v", lambda o: (o + 1, None))   # one step: x.v = 1 and note.n = 2
        note.n = note.n + 2

    def t1() -> None:
        free(lock, "by t1")

    both = Check("both", lambda: "freed and noted" if freed(lock) and note.n >= 1 else None,
                 stable=True)
    return Instance(
        threads={"t0": t0, "t1": t1},
        # the stable one first: t0's step makes both false, and the unstable one ends it
        invariants=[both, Check("x-is-zero", lambda: f"x.v={x.v}" if x.v else None)],
        goals=[Check("goal", lambda: freed(lock) and note.n >= 1, stable=True)],
    )


SEARCHES: dict[str, Callable[[Program], Result]] = {
    "brute": lambda p: explore_brute(p, Budget(), stop_first=False),
    "dpor cached": lambda p: explore(p, stop_first=False, minimal=False),
    "dpor uncached": lambda p: explore(p, stop_first=False, minimal=False, cache=False),
    "optimal": lambda p: explore(p, strategy="optimal", stop_first=False, minimal=False),
    "2 simulated workers": lambda p: explore_parallel(p, Budget(), InProcess(2, seed=1),
                                                      stop_first=False, depth=1),
}


@pytest.mark.parametrize("who", list(SEARCHES))
def test_the_order_after_a_cut_short_step_is_explored(who: str) -> None:
    res = SEARCHES[who](Program(f"cut-short/{who}", build))
    assert res.exhaustive, res.coverage
    assert sorted(f.key for f in res.findings) == [("invariant", "both"),
                                                  ("invariant", "x-is-zero")]
    assert set(res.goals_reached) == {"goal"}


def test_every_step_wakes_a_cut_short_sleeper() -> None:
    assert wakes(CUT_SHORT, ((3, "v", False),))
    assert wakes(CUT_SHORT, ())  # even a step that touches nothing
    assert not wakes(((3, "v", False),), ((3, "v", False),))  # two reads: still asleep
    assert wakes(((3, "v", False),), ((3, "v", True),))
    # the race scan's dependence is untouched by it: no real step touches its object
    assert not dependent(CUT_SHORT, ((7, "*", True),))
