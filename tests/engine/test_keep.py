"""``keep(value)``: a value a thread read from ghost state and keeps in a local is part of
its state. Ghost reads leave no history, so without it two states that differ only in what
a suspended thread kept are taken for one by state caching, and a check that the kept value
decides is missed where the search reaches the second state (the model's fault keeps its
origin snapshot this way until the SPTE install checks it for staleness, I4)."""

from __future__ import annotations

from pfnlab.explore import Field, Ghost, Instance, Program, Shared, fail, keep
from pfnlab.explore.search import Budget
from pfnlab.explore.search.dpor import explore_dpor


class X(Shared):
    v = Field(0)
    y = Field(0)


class G(Shared):
    n = Ghost(0)


def _program(kept: bool) -> Program:
    def build() -> Instance:
        x, g = X("x"), G("g")

        def bumper() -> None:  # writes x.v (its value unchanged) and bumps the ghost
            x.v = 0
            g.n = 1

        def reader() -> None:
            _ = x.v            # conflicts with bumper's write: both orders are explored
            seen = keep(g.n) if kept else g.n
            _ = x.y            # a step: the state after both threads' first steps is shared
            if seen != g.n:
                fail("stale", f"kept n={seen}, now n={g.n}")

        return Instance(threads={"bumper": bumper, "reader": reader})

    return Program(f"keep-{kept}", build)


def test_a_kept_ghost_value_splits_states() -> None:
    res = explore_dpor(_program(True), Budget(), stop_first=False)
    assert [f.prop for f in res.findings] == ["stale"]
    assert explore_dpor(_program(True), Budget(), stop_first=False, cache=False).findings


def test_without_keep_state_caching_merges_what_the_thread_kept() -> None:
    """The hole keep() closes: the same program reading the ghost without it."""
    assert explore_dpor(_program(False), Budget(), stop_first=False, cache=False).findings
    assert not explore_dpor(_program(False), Budget(), stop_first=False).findings
