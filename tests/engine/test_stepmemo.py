"""The step memo (stepmemo.py): a step taken again from the same thread state and shared
state is applied from its recorded outcome instead of running the thread's code.

It must change no result: searches with and without it report the same findings (messages
included), final states, violations, states, executions, coverage and goals, on random
programs and on the built-in scenarios; every state it steps into is the state a
re-execution reaches (test_snapshots.py's verifying search runs with the memo on, and here
on scenarios where the memo is known to hit); a wrong recorded outcome is caught at the
next rebuild of the thread, never explored silently; and it is off where its premise (the
one state caching rests on) is not assumed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import note as hypothesis_note

from pfnlab.explore import Field, Instance, Program, Shared
from pfnlab.explore.runtime import Execution
from pfnlab.explore.search import Budget
from pfnlab.explore.search.dpor import SourceDpor
from pfnlab.kernel.variant import get_variant
from pfnlab.model.scenario import SCENARIOS
from tests.engine.oracle import typed_final_states
from tests.engine.programs import WIDE, WideSpec, wide_program, wide_source
from tests.engine.test_differential import wide_specs
from tests.engine.test_snapshots import VerifyingDpor

NO_PLAIN = replace(WIDE, plain=False)


def _outcome(make: Callable[[], Program], memo: bool) -> tuple[Any, ...]:
    program = make()
    with typed_final_states():
        res = SourceDpor(program, Budget(), stop_first=False, collect_final_states=True,
                         memo=memo).run()
    return ([(f.key, f.message) for f in res.findings], res.final_states, res.violations,
            res.stats.states, res.stats.executions, res.coverage, sorted(res.goals_reached),
            res.stats.memoised)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(wide_specs(NO_PLAIN))
def test_the_memo_changes_no_result(spec: Any) -> None:
    hypothesis_note(wide_source(spec))
    on = _outcome(lambda: wide_program(spec), True)
    off = _outcome(lambda: wide_program(spec), False)
    assert off[-1] == 0
    assert on[:-1] == off[:-1]


SCENARIO_CELLS = [
    ("v5.4", "devdax-unbind", {"vcpus": 2, "pages": 1}),
    ("v5.3", "devdax-unbind", {"vcpus": 2, "pages": 1}),
    ("v5.4", "two-vcpu-same-gfn", {}),
    ("sean-v1", "remapped-vs-unbind", {}),
    ("dan-early-put", "thp-split", {}),
    ("v5.4", "vcpu-map-vs-unbind", {}),
]


@pytest.mark.parametrize(("variant", "scenario", "sizes"), SCENARIO_CELLS)
def test_the_memo_changes_no_model_result(variant: str, scenario: str,
                                          sizes: dict[str, int]) -> None:
    def make() -> Program:
        return SCENARIOS[scenario].program(get_variant(variant), **sizes)

    on, off = _outcome(make, True), _outcome(make, False)
    assert on[-1] > 0 and off[-1] == 0  # it was used
    assert on[:-1] == off[:-1]


def test_memoised_steps_reach_the_re_executed_states() -> None:
    prog = SCENARIOS["devdax-unbind"].program(get_variant("v5.4"), vcpus=2, pages=1)
    VerifyingDpor.checked = 0
    res = VerifyingDpor(prog, Budget(executions=150), stop_first=False).run()
    assert res.stats.memoised > 40  # 82 when written
    assert VerifyingDpor.checked > 150


def test_most_steps_of_a_vcpu_race_are_memoised() -> None:
    """What it is for: at devdax-unbind 2 x 2 most steps back at a node were taken
    before from the same state, so they need neither the thread's code nor a rebuild:
    about four memoised steps per five states (8,086 for 10,316 states; 9,854 for 10,938
    when a contended lock was a failed attempt, a step of its own, memoised too)."""
    prog = SCENARIOS["devdax-unbind"].program(get_variant("v5.4"), vcpus=2, pages=2)
    st = SourceDpor(prog, Budget(), stop_first=False).run().stats
    assert st.memoised > st.states * 0.75


class Box(Shared):
    x = Field(0)
    y = Field(0)


def _racing() -> Program:
    def build() -> Instance:
        b = Box("box")

        def t0() -> None:
            _ = b.y
            b.x = b.x + 1
            b.y = 1

        def t1() -> None:
            _ = b.y
            b.x = b.x + 2

        return Instance(threads={"t0": t0, "t1": t1})

    return Program("memo-racing", build)


def test_a_wrong_recorded_outcome_is_caught_at_the_next_rebuild(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The safety net: a memoised step leaves its thread stale, and rebuilding it re-runs
    its code against the log and checks where it stops. An outcome recorded with a wrong
    history key (as a thread that read something outside shared state would give) is
    reported there, never explored as if right."""
    from pfnlab.explore.runtime import stepmemo

    real = stepmemo.StepMemo._memo_record

    def corrupt(self: Execution, mk: tuple[int, ...], t: Any, nstarts: int, nnoted: int,
                fp: tuple[Any, ...]) -> None:
        real(self, mk, t, nstarts, nnoted, fp)
        assert self.memo is not None
        if mk in self.memo and self.memo[mk].op is not None:
            self.memo[mk] = self.memo[mk]._replace(key=self.memo[mk].key ^ 1)

    monkeypatch.setattr(stepmemo.StepMemo, "_memo_record", corrupt)
    with pytest.raises(RuntimeError, match="is not deterministic"):
        SourceDpor(_racing(), Budget(), stop_first=False).run()


def test_the_memo_is_off_without_state_caching() -> None:
    """Its premise is state caching's (a thread's state is its history key): a search
    without caching does not assume it (test_keep.py shows a model where it fails)."""
    st = SourceDpor(_racing(), Budget(), stop_first=False, cache=False).run().stats
    assert st.memoised == 0
    assert SourceDpor(_racing(), Budget(), stop_first=False).run().stats.memoised > 0


LEFTOVERS = [
    # a thread that once failed to take the lock kept that attempt's read set after taking
    # it later (found by the verifying search in CI)
    WideSpec(threads=((("r", 0), ("cs", 0, (("r", 0),)), ("r", 0), ("r", 0), ("r", 0)),
                      (("cs", 0, (("r", 0),)), ("r", 0))),
             inits=(0,), nlocks=1, invariants=(), goals=(),
             finals=(("and", (("held", 0, None),)),)),
    # a finished thread kept its last attempt's result (found by a longer verifying run)
    WideSpec(threads=((("cs", 0, (("inc", 0),)),
                       ("wait", ("or", (("held", 0, "t1"), ("p", 0, ">=", 2),
                                        ("not", ("owner", 0, "t0"))))),
                       ("if", False, (("w", 0, -1), ("inc", 0))), ("cs", 0, (("r", 0),))),
                      (("wcmp", 0, -2), ("acq", 0), ("fail", -2))),
             inits=(0,), nlocks=1, invariants=(),
             goals=((("and", (("not", ("p", 0, "is", True)), ("freed", "x0"))), False),
                    (("and", (("n", 2),)), False)),
             finals=(("or", (("v", 0, "is", True),)),
                     ("and", (("freed", "L0"), ("p", 0, "is", False),
                              ("not", ("v", 0, "<=", 0)))))),
]


@pytest.mark.parametrize("spec", LEFTOVERS)
def test_a_step_leaves_the_bookkeeping_a_re_execution_does(spec: WideSpec) -> None:
    """What an earlier lock or wait attempt left in a thread's bookkeeping (its read set,
    its result) was kept after the thread moved on or finished, so a memoised step
    (recorded from a history without that attempt) left something else than the real
    step. It is reset when the thread moves on: equal keys give equal bookkeeping."""
    VerifyingDpor.checked = 0
    res = VerifyingDpor(wide_program(spec), Budget(executions=400), stop_first=False).run()
    assert VerifyingDpor.checked > 10 and res.stats.memoised > 0
