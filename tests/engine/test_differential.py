"""The reduced search against brute force, on random small concurrent programs.

For every generated program, DPOR (with and without state caching) must reach exactly the
same set of final states and the same set of violations as brute-force enumeration of all
interleavings, with no more executions.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pfnlab.explore.search.brute import explore_brute
from pfnlab.explore.search.dpor import explore_dpor
from tests.engine.programs import random_program

NVARS, NLOCKS = 2, 2


def _op(depth: int) -> st.SearchStrategy:
    var = st.integers(0, NVARS - 1)
    simple = st.one_of(
        st.tuples(st.just("r"), var),
        st.tuples(st.just("w"), var, st.integers(0, 2)),
        st.tuples(st.just("inc"), var),
        st.tuples(st.just("wait"), var, st.integers(0, 2)),
        st.tuples(st.just("assert"), st.integers(1, 3)),
        st.tuples(st.just("ghost"), st.integers(0, 2)),
    )
    if depth == 0:
        return simple
    cs = st.tuples(st.just("cs"), st.integers(0, NLOCKS - 1),
                   st.lists(_op(depth - 1), min_size=1, max_size=2))
    return st.one_of(simple, cs)


programs = st.tuples(
    st.lists(st.lists(_op(1), min_size=1, max_size=3), min_size=2, max_size=3),
    st.none() | st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.none() | st.integers(0, 2),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs)
# a wait that succeeds and then writes ghost state has a different footprint from one that
# fails: source-DPOR must follow the reversal sequence, not rediscover the race
@example(([[("wait", 1, 0), ("ghost", 1)], [("w", 0, 0), ("inc", 1)],
           [("inc", 0), ("ghost", 0)]], None, None))
def test_dpor_matches_brute_force(args: tuple) -> None:
    spec, inv, ghost_final = args
    prog = random_program(spec, NVARS, NLOCKS, inv, ghost_final)
    brute = explore_brute(prog, stop_first=False, collect_final_states=True)
    for cache in (True, False):
        red = explore_dpor(prog, cache=cache, stop_first=False, collect_final_states=True)
        assert red.final_states == brute.final_states, f"cache={cache}"
        assert red.violations == brute.violations, f"cache={cache}"
        assert red.stats.executions <= brute.stats.executions, f"cache={cache}"
        assert red.exhaustive
