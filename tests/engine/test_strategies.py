"""Bounded and sampling modes say exactly what they covered; results are deterministic."""

from __future__ import annotations

import pytest

from pfnlab.explore.search import Budget, explore
from tests.engine.programs import abba, atomic_counter, independent, lost_update


def test_preemption_bound_coverage_text() -> None:
    res = explore(atomic_counter(), strategy="bounded", preemptions=2)
    assert res.ok and not res.exhaustive
    assert res.coverage == "all schedules with ≤ 2 preemptions"


def test_bounded_finds_with_fewest_preemptions() -> None:
    res = explore(lost_update(), strategy="bounded", preemptions=3, minimal=False)
    (f,) = res.findings
    assert res.coverage == "stopped at the first finding, with 1 preemptions; none with ≤ 0"
    assert f.preemptions == 1


def test_random_and_pct_are_reproducible() -> None:
    for strategy in ("random", "pct"):
        a = explore(abba(), strategy=strategy, executions=200, seed=7)
        b = explore(abba(), strategy=strategy, executions=200, seed=7)
        assert a.coverage == b.coverage
        assert a.stats.executions == b.stats.executions
        assert [str(s) for s in a.findings[0].schedule] == [str(s) for s in b.findings[0].schedule]
    ok = explore(atomic_counter(), strategy="random", executions=50, seed=1)
    assert ok.coverage == "50 random executions (seed 1)" and ok.ok
    ok = explore(atomic_counter(), strategy="pct", executions=20, seed=1)
    assert ok.coverage == "20 PCT executions (depth 3, seed 1)"


def test_execution_budget_is_never_a_silent_pass() -> None:
    res = explore(independent(3, 3), budget=Budget(executions=5))
    assert not res.exhaustive
    assert res.coverage == (
        "budget reached after 5 executions "
        f"({res.stats.seconds:.1f} s): partial, no claim beyond them"
    )


def test_bad_budget_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Budget(executions=0)
    with pytest.raises(ValueError, match="unknown strategy"):
        explore(abba(), strategy="bfs")


def test_same_input_same_result_and_statistics() -> None:
    runs = [explore(independent(3, 2), stop_first=False) for _ in range(2)]
    a, b = (r.stats.as_dict() for r in runs)
    for k in ("seconds", "steps_per_second"):
        a.pop(k)
        b.pop(k)
    assert a == b
    assert runs[0].coverage == runs[1].coverage


def test_reduction_against_brute_force_on_mostly_independent_threads() -> None:
    red = explore(independent(3, 1), stop_first=False)
    brute = explore(independent(3, 1), strategy="brute", stop_first=False)
    assert red.ok and brute.ok
    assert brute.stats.executions == 1680       # 9! / (3! 3! 3!)
    assert brute.stats.executions >= 10 * red.stats.executions
    assert red.stats.caching and red.stats.states > 0


@pytest.mark.parametrize("cache", [True, False])
def test_executions_equal_mazurkiewicz_traces(cache: bool) -> None:
    # own-variable steps commute; only the order of the three atomic increments of the
    # shared counter tells traces apart: 3! = 6 traces
    red = explore(independent(3, 2), stop_first=False, cache=cache)
    assert red.stats.executions == 6


@pytest.mark.parametrize("strategy", ["dpor", "brute", "bounded", "random", "pct"])
def test_progress_reports_and_ctrl_c_gives_a_partial_result(strategy: str) -> None:
    from pfnlab.explore.search import common, reporting

    seen: list[int] = []

    def progress(stats, elapsed: float) -> None:
        seen.append(stats.executions)
        if len(seen) == 2:
            raise KeyboardInterrupt   # what Ctrl-C does in the middle of a search

    # report on every call, so that the test does not depend on timing
    orig = common.time.perf_counter
    ticks = iter(range(10**9))
    common.time.perf_counter = lambda: float(next(ticks))  # type: ignore[assignment]
    try:
        with reporting(progress):
            res = explore(independent(4, 3), strategy=strategy, stop_first=False,
                          executions=10**6)
    finally:
        common.time.perf_counter = orig  # type: ignore[assignment]
    assert len(seen) == 2
    assert not res.exhaustive
    assert "interrupted" in res.coverage, res.coverage
