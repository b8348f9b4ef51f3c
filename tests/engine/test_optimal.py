"""Optimal DPOR (search/optimal.py, docs/reductions.md section 14) against source-DPOR,
trace by trace, and against brute force.

Source-DPOR with sleep sets explores every Mazurkiewicz trace of a program's complete
executions once; optimal DPOR must explore the same set (tests/engine/traces.py names each
trace by its canonical linearisation), with no sleep-set-blocked execution where no finding
cut one short. Random programs inside its model (tests/engine/single_access.py) are drawn
by Hypothesis; bench/optimal_traces.py runs thousands. The programs below broke its earlier
versions, which ran wakeup trees on every program (found by bench/differential.py and a
trace-by-trace comparison over its programs, seed 1, each shrunk); outside the model they
are now searched by source-DPOR, and must stay right:

- #268: a step whose finding cut the execution short slept as an ordinary step, and the
  order in which the other thread ran first was never explored (source-DPOR too);
- #952, #1903: a branch cut short by its finding covered, as independent of it, sequences
  that never ran after it (a use after free missed);
- #714: a thread that takes a lock and finishes without releasing it was a weak initial of
  a reversal that needs that lock later;
- #482: a wait's footprint changes with the values it reads (``a or b``); a weak initial
  decided on the footprint it had before the reversal lost 11 of 36 traces.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfnlab.explore import Program
from pfnlab.explore.search import Budget, explore
from pfnlab.explore.search.optimal import OptimalDpor
from tests.engine.dpor_benchmarks import BENCHMARKS
from tests.engine.oracle import differential
from tests.engine.programs import WideSpec, wide_program
from tests.engine.single_access import draw, program
from tests.engine.traces import traces

REGRESSIONS: dict[str, WideSpec] = {
    "268": WideSpec(
        threads=((("inc", 0), ("gadd", 2)), (("free", "L0"),)), inits=(0,), nlocks=2,
        invariants=((("and", (("p", 0, "==", True),)), False),),
        goals=((("and", (("freed", "L0"), ("n", 1))), True),)),
    "952": WideSpec(
        threads=((("wait", ("and", (("v", 0, ">=", True), ("v", 0, "<=", -1),
                                    ("freed", "x0")))),),
                 (("free", "x0"), ("r", 0)), (("r", 0),)),
        inits=(0,), nlocks=0),
    "1903": WideSpec(
        threads=((("wcmp", 1, 0),), (("acq", 1),), (("r", 0), ("free", "L1"))),
        inits=(0, 0), nlocks=2,
        invariants=((("and", (("not", ("v", 1, "==", False)),)), False),)),
    "714": WideSpec(
        threads=((("acq", 0),), (("cs", 0, (("r", 0), ("inc", 0))),),
                 (("next",), ("inc", 0), ("pr", 0), ("fail", -2))),
        inits=(True,), nlocks=1),
    "482": WideSpec(
        threads=((("xchg", 0, 1), ("wcmp", 0, -1)), (("pr", 1), ("w", 1, 2)),
                 (("wait", ("or", (("p", 1, ">=", 2), ("freed", "x0"),
                                   ("not", ("p", 0, "!=", 1))))),),
                 (("r", 0), ("r", 0))),
        inits=(-1, 0), nlocks=0,
        finals=(("or", (("v", 1, "<=", 0),)),
                ("and", (("p", 0, ">=", -1), ("v", 1, "is", True))))),
}


@pytest.mark.parametrize("name", list(REGRESSIONS))
def test_regressions_agree_with_brute_force(name: str) -> None:
    v = differential(wide_program(REGRESSIONS[name]))
    assert v.ok, v.problems


@pytest.mark.parametrize("name", list(REGRESSIONS))
def test_regressions_explore_every_trace(name: str) -> None:
    spec = REGRESSIONS[name]
    source = traces(wide_program(spec), optimal=False)
    optimal = traces(wide_program(spec), optimal=True)
    assert optimal == source, (f"{len(source - optimal)} of {len(source)} traces missed, "
                               f"{len(optimal - source)} not source-DPOR's")


def test_the_wait_program_has_all_36_traces() -> None:
    assert len(traces(wide_program(REGRESSIONS["482"]), optimal=True)) == 36


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32))
def test_random_single_access_programs(seed: int) -> None:
    spec = draw(random.Random(seed))
    source = traces(program(spec), optimal=False, rounds=None)
    assert traces(program(spec), optimal=True, rounds=None) == source
    res = explore(program(spec), strategy="optimal", stop_first=False, minimal=False)
    if res.findings:  # they end executions: outside the model, searched by source-DPOR
        assert "optimal DPOR needs" in res.coverage
    else:
        assert "wakeup trees" in res.coverage
        assert res.stats.sleep_blocked == 0
        assert res.stats.complete == res.stats.executions == len(source)


@pytest.mark.parametrize("seed", [3, 17, 29])
def test_random_single_access_programs_agree_with_brute_force(seed: int) -> None:
    v = differential(program(draw(random.Random(seed))))
    assert v.ok, v.problems


@pytest.mark.parametrize(("name", "size"), [("lastzero", 5), ("indexer", 12), ("mpat", 3),
                                            ("fib_bench", 2), ("multiprodcon", 2)])
def test_benchmarks_explore_every_trace(name: str, size: int) -> None:
    source = traces(BENCHMARKS[name](size), optimal=False)
    assert traces(BENCHMARKS[name](size), optimal=True) == source


def test_explore_runs_it_by_name() -> None:
    res = explore(Program("lastzero-5", BENCHMARKS["lastzero"](5).build), strategy="optimal",
                  stop_first=False)
    assert res.strategy == "optimal" and res.exhaustive
    assert (res.stats.complete, res.stats.sleep_blocked) == (64, 0)


def test_an_object_created_later_that_joins_steps_restarts_the_round() -> None:
    """Every step is one access until t0 creates an object with a Ghost field (its writes
    join steps): the round that assumed otherwise ends, and source-DPOR searches."""
    from pfnlab.explore import Field, Ghost, Instance, Shared

    class Var(Shared):
        v = Field(0)

    class Noted(Shared):
        g = Ghost(0)

    def build() -> Instance:
        x = Var("x")

        def t0() -> None:
            r = x.v            # (created after its first step, not in the initial state)
            n = Noted("n")
            n.g = r
            x.v = r + 1

        def t1() -> None:
            x.v = x.v + 10

        return Instance(threads={"t0": t0, "t1": t1})

    search = OptimalDpor(Program("creates-a-ghost", build), Budget(), stop_first=False)
    res = search.run()
    assert res.exhaustive and search.outside and not search.trees, res.coverage
    assert "optimal DPOR needs steps that are single accesses" in res.coverage
    assert res.stats.rounds >= 2  # (the round it broke in, and at least one after)
    assert traces(Program("creates-a-ghost", build), optimal=True, rounds=None) == traces(
        Program("creates-a-ghost", build), optimal=False, rounds=None)


def test_the_bench_script_runs() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "bench" / "optimal_traces.py"
    out = subprocess.run([sys.executable, str(script), "--programs", "12", "--seed", "5"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("12 programs, 0 disagreements ("), out.stdout
