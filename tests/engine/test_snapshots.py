"""Checkpoints (snapshot.py): going back to a state by undoing, not by re-executing.

A search that restores a checkpoint and rebuilds the threads that moved must see exactly
the state a re-execution of the same schedule reaches: every field (typed), the state hash,
every thread's history key, pending operation, blocked flag and watched fields, the checks'
read sets and the stable invariants found false. The verifying search below compares the
two at every state it restores and every state it steps into, on random programs (without
Plain fields, which turn checkpoints off) and on the built-in scenarios. Searches with and
without checkpoints must also report the same findings, states and executions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import note as hypothesis_note

from pfnlab.explore import Field, Instance, Program, Shared, wait_until
from pfnlab.explore.runtime import Execution, Footprint
from pfnlab.explore.search import Budget
from pfnlab.explore.search.common import replay_tids
from pfnlab.explore.search.dpor import SourceDpor
from pfnlab.explore.search.dpor.stack import Node
from pfnlab.kernel.variant import get_variant
from pfnlab.model.scenario import SCENARIOS
from tests.engine.oracle import typed_final_state, typed_final_states
from tests.engine.programs import WIDE, WideSpec, uses_plain, wide_program, wide_source
from tests.engine.test_differential import wide_specs


def view(ex: Execution) -> dict[str, Any]:
    """Everything about ``ex``'s state that a search or a check can see."""
    def op(t: Any) -> Any:
        o = t.op
        return None if o is None else (o.kind, o.obj.__dict__["_name"], o.field)

    return {
        "fields": typed_final_state(ex),
        "zob": ex.zob,
        "fingerprint": ex.fingerprint(),
        "threads": [(t.name, t.key, t.depth, t.blocked, t.value, t.reads,
                     sorted(t.watched), op(t)) for t in ex.threads],
        "watch": sorted((k, tuple(sorted(v))) for k, v in ex.watch.items() if v),
        "inv_false": sorted(ex.inv_false),
        "inv_reads": [sorted(r) for r in ex.inv_reads],
        "finished": ex.finished,
    }


class VerifyingDpor(SourceDpor):
    """Source DPOR that checks every restored or newly reached state against a
    re-execution of its schedule."""

    checked = 0

    def _same(self, ex: Execution, what: str) -> None:
        if len(self.program.knowledge) != self.r.clock.promotions:
            # a step of this round promoted a stable field: the round's executions took the
            # old steps and it starts again (a re-execution would take the new ones)
            return
        ref = replay_tids(self.program, list(ex.schedule), visible=self.visible,
                          observed=set(self.observed))
        mine, theirs = view(ex), view(ref)
        ref.close()
        for k in mine:
            assert mine[k] == theirs[k], (
                f"{what} after schedule {ex.schedule}: {k} differs\n"
                f"restored:     {mine[k]}\nre-executed: {theirs[k]}")
        type(self).checked += 1

    def _at(self, depth: int) -> Execution:
        ex = super()._at(depth)
        self._same(ex, "restore")
        return ex

    def node(self, ex: Execution, sleep: dict[int, Footprint],
              tclock: tuple[tuple[int, ...], ...], fpr: int | None = None) -> Node:
        if ex.nsteps:
            self._same(ex, "step")
        return super().node(ex, sleep, tclock, fpr)


def _outcome(make: Callable[[], Program], snapshots: bool,
             budget: Budget | None = None) -> Any:
    """A fresh program each time: what a search learns about one (the stable fields it
    promoted) would otherwise carry over to the next search."""
    program = make()
    with typed_final_states():
        res = SourceDpor(program, budget or Budget(), stop_first=False,
                         collect_final_states=True, snapshots=snapshots).run()
    return ([(f.key, f.message) for f in res.findings], res.final_states, res.violations,
            res.stats.states, res.stats.executions, res.coverage, sorted(res.goals_reached))


NO_PLAIN = replace(WIDE, plain=False)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(wide_specs(NO_PLAIN))
def test_restored_states_are_the_re_executed_ones(spec: WideSpec) -> None:
    hypothesis_note(wide_source(spec))
    assert not uses_plain(spec)
    prog = wide_program(spec)
    VerifyingDpor(prog, Budget(executions=400), stop_first=False).run()


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(wide_specs(NO_PLAIN))
def test_checkpoints_change_no_result(spec: WideSpec) -> None:
    hypothesis_note(wide_source(spec))
    assert _outcome(lambda: wide_program(spec), True) == \
        _outcome(lambda: wide_program(spec), False)


@pytest.mark.parametrize(("variant", "scenario", "sizes"), [
    ("v5.4", "devdax-unbind", {"vcpus": 2, "pages": 1}),
    ("v5.3", "devdax-unbind", {"vcpus": 1, "pages": 1}),
    ("v5.4", "vcpu-map-vs-unbind", {}),
    ("v5.4", "two-vcpu-same-gfn", {}),
    ("dan-early-put", "thp-split", {}),
    ("v6.0", "dirty-log-collapse", {}),
])
def test_restored_model_states_are_the_re_executed_ones(
        variant: str, scenario: str, sizes: dict[str, int]) -> None:
    prog = SCENARIOS[scenario].program(get_variant(variant), **sizes)
    VerifyingDpor.checked = 0
    VerifyingDpor(prog, Budget(executions=60), stop_first=False).run()
    assert VerifyingDpor.checked > 60  # restores and steps were compared


@pytest.mark.parametrize(("variant", "scenario"), [
    ("v5.3", "devdax-unbind"), ("v5.4", "devdax-unbind"), ("sean-v1", "remapped-vs-unbind"),
    ("v5.4", "two-vcpu-same-gfn"),
])
def test_model_results_are_the_same_with_and_without_checkpoints(
        variant: str, scenario: str) -> None:
    def make() -> Program:
        return SCENARIOS[scenario].program(get_variant(variant))

    assert _outcome(make, True) == _outcome(make, False)


def test_a_search_with_checkpoints_runs_less_than_half_the_steps() -> None:
    """The point of it: the steps run are the new ones plus the rebuilt threads' own, not
    every prefix again."""
    def make() -> Program:
        return SCENARIOS["devdax-unbind"].program(get_variant("v5.4"), vcpus=2, pages=1)

    on = SourceDpor(make(), Budget(), stop_first=False, snapshots=True).run().stats
    off = SourceDpor(make(), Budget(), stop_first=False, snapshots=False).run().stats
    assert (on.states, on.executions) == (off.states, off.executions)
    assert on.steps < off.steps / 2


class Box(Shared):
    x = Field(0)


_CALLS = [0]


def test_a_thread_that_is_not_deterministic_is_an_error() -> None:
    """A rebuilt thread must stop where it stopped the first time; one whose code depends
    on something outside shared state (here a global counter) cannot be rebuilt."""
    def build() -> Instance:
        b = Box("box")

        def t0() -> None:
            _CALLS[0] += 1
            if _CALLS[0] % 2:
                b.x = 1
            else:
                _ = b.x
            b.x = 2

        def t1() -> None:
            b.x = 3

        return Instance(threads={"t0": t0, "t1": t1})

    with pytest.raises(RuntimeError, match="thread t0 is not deterministic"):
        SourceDpor(Program("nondet", build), Budget(), stop_first=False, cache=False).run()


def test_plain_fields_turn_checkpoints_off() -> None:
    from pfnlab.explore import Plain

    class P(Shared):
        v = Plain(0)

    def build() -> Instance:
        p = P("p")

        def t() -> None:
            p.v = 1

        return Instance(threads={"a": t, "b": lambda: wait_until(lambda: True, what="w")})

    ex = replay_tids(Program("plain", build), [], snapshots=True)
    assert not ex.snapshots_ok()
    assert ex.no_snapshots == "the race detector's clocks are not in the undo log"
    ex.close()
