"""Issue 13: the time budget covers the work after the search (minimisation), and sizes are
capped for every caller, not only the command line."""

from __future__ import annotations

import time

import pytest

from pfnlab import api
from pfnlab.explore.search import explain, explore
from pfnlab.explore.search.minimize import minimize
from pfnlab.scenarios import SCENARIOS
from pfnlab.variants import VARIANTS


def _finding():  # type: ignore[no-untyped-def]
    program = SCENARIOS["devdax-unbind"].program(VARIANTS["v5.3"])
    res = explore(program, stop_first=True, minimal=False)
    return program, res.findings[0]


def test_past_the_deadline_a_finding_is_not_minimised() -> None:
    program, f = _finding()
    g = explain(program, f, deadline=time.perf_counter() - 1)
    assert g.minimal == "as found by the search (not minimised: the time budget ran out)"
    assert g.trace and g.key == f.key


def test_the_minimiser_stops_at_the_deadline() -> None:
    from pfnlab.explore.runtime import Execution

    program, f = _finding()
    probe = Execution(program)
    names = probe.thread_names()
    probe.close()
    tids = [names.index(s.thread) for s in f.schedule]
    m = minimize(program, f.key, tids, deadline=time.perf_counter() - 1)
    assert (m.proven, m.timed_out, m.tids) == (False, True, tids)


def test_sizes_are_capped_for_every_caller() -> None:
    with pytest.raises(ValueError, match="above the cap of 16"):
        api.check("v5.4", "devdax-unbind", vcpus=10**20)
    with pytest.raises(ValueError, match="above the cap of 64"):
        api.check("v5.4", "devdax-unbind", pages=65)


@pytest.mark.parametrize("bad", [0, True, 17, "2"])
def test_a_scenario_default_size_obeys_the_size_rule(bad: object) -> None:
    """A default of 0 or True was accepted by @scenario and check but refused by replay."""
    from pfnlab import scenario

    with pytest.raises(ValueError, match="must be a whole number from 1 to 16"):
        scenario("bad-default", sizes={"vcpus": bad})(lambda v, sz: None)  # type: ignore


def test_the_causal_core_stops_at_the_deadline() -> None:
    from pfnlab.explain.causal import causal_core
    from pfnlab.report.causal import causal_text

    program = SCENARIOS["devdax-unbind"].program(VARIANTS["v5.3"])
    f = explore(program, stop_first=True).findings[0]
    c = causal_core(program, f, deadline=time.perf_counter() - 1)
    assert (c.first, c.tried, c.out_of_time) == (None, 0, True)
    assert causal_text(c).startswith("not computed: the time budget ran out after 0 of the racing")
