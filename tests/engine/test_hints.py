"""A passing wait ends its step (docs/reductions.md section 2, "a passing wait ends its
step").

The race checks of a blocked waiter use its pending step: the wait's condition reads.
When the step that passed a wait also ran on into the code after it, that step wrote more
(ghost state, plain fields) than the pending step showed, so a write of another thread that
conflicts with it was never race-checked against it while it was blocked. Source-DPOR's
reversal hints hid this without state caching; a cache hit, which can only expand the
racing stack nodes, lost the hint the pruned subtree would have given, and the cached
search missed executions. These programs (the hint-mutation generator, seed 1, the first
1,400 programs; the last one found after a first fix that kept hints across cache hits)
each reached a final state brute force reaches and cached DPOR did not.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from pfnlab.explore.runtime import Execution
from tests.engine.oracle import differential
from tests.engine.programs import hint_spec, random_program

FOUND: list[tuple[list[list[tuple[Any, ...]]], int | None]] = [
    ([[("wait", 1, 0), ("ghost", 1), ("wait", 0, 1)], [("w", 0, 0), ("inc", 1)],
      [("inc", 0), ("ghost", 0), ("ghost", 0)]], 0),
    ([[("w", 0, 0), ("inc", 1)], [("wait", 1, 0), ("ghost", 1), ("inc", 0)],
      [("inc", 2), ("inc", 0), ("inc", 2), ("ghost", 0)]], 1),
    ([[("wait", 1, 0), ("ghost", 1), ("inc", 2)], [("inc", 0), ("ghost", 0)],
      [("w", 0, 0), ("w", 2, 0), ("inc", 1)], [("inc", 2), ("ghost", 0)]], 2),
    ([[("wait", 1, 0), ("ghost", 1), ("w", 2, 0)], [("w", 0, 0), ("inc", 1)],
      [("inc", 0), ("w", 0, 1), ("wait", 0, 1), ("inc", 2), ("ghost", 0)]], None),
    ([[("w", 0, 0), ("inc", 1), ("inc", 2)], [("wait", 1, 0), ("ghost", 1)],
      [("inc", 0), ("inc", 2), ("ghost", 0), ("inc", 0)], [("r", 0), ("w", 2, 0)]], None),
    ([[("wait", 1, 0), ("ghost", 1)], [("w", 0, 0), ("inc", 1), ("inc", 2)],
      [("inc", 2), ("inc", 0), ("ghost", 0)], [("ghost", 0)]], 0),
    ([[("w", 0, 0), ("inc", 1)], [("wait", 1, 0), ("ghost", 1)],
      [("w", 1, 0), ("inc", 0), ("inc", 2), ("ghost", 0)]], 0),
]


@pytest.mark.parametrize(("spec", "ghost_final"), FOUND)
def test_cached_dpor_reaches_what_a_passed_wait_then_writes(
        spec: list[list[tuple[Any, ...]]], ghost_final: int | None) -> None:
    v = differential(random_program(spec, 3, 1, None, ghost_final))
    assert v.ok, "\n".join(v.problems)
    # what was missed each time: a wait passed and the ghost write after it came last
    assert any(("note", False, (("last", "1"),)) in fs for fs in v.dpor[True].final_states)


def test_with_the_code_after_a_wait_in_the_waits_step_they_are_missed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The step as it was (a passing wait runs on into the code after it): the cached
    search misses a final state in some of them (which ones depends on the order the
    search takes; 4 of the 7 with summary races as they are), so the test above can
    fail."""
    def run_on(self: Execution, t: Any, op: Any, value: Any) -> None:
        self._resume(t, value)

    monkeypatch.setattr(Execution, "_passed", run_on)
    missed = [spec for spec, ghost_final in FOUND
              if any("dpor cache=True: final states" in p
                     for p in differential(random_program(spec, 3, 1, None,
                                                          ghost_final)).problems)]
    assert len(missed) == 4, missed  # the search is deterministic: which ones is fixed


def test_a_passed_wait_and_the_code_after_it_are_two_steps() -> None:
    """The wait's step reads the condition only; the next one (``continue after wait``)
    runs the code after it, here a ghost write."""
    from pfnlab.explore.search.common import replay_tids

    spec = [[("wait", 1, 0), ("ghost", 1)]]
    ex = replay_tids(random_program(spec, 3, 1, None, None), [])
    assert ex.label(0).endswith("wait x1 == 0")
    wait_fp = ex.step(0)
    assert all(not w for _o, _f, w in wait_fp)          # the condition's read only
    assert ex.label(0).endswith("continue after wait x1 == 0")
    resume_fp = ex.step(0)
    assert any(w for _o, f, w in resume_fp if f == "last")   # the ghost write
    assert ex.finished


def test_hint_mutations_agree_with_brute_force() -> None:
    """The CI budget of the generator that found them: 60 programs (bench/differential.py
    --hints runs thousands)."""
    rng = random.Random("hints:ci")
    for i in range(60):
        spec, ghost_final = hint_spec(rng)
        v = differential(random_program(spec, 3, 1, None, ghost_final))
        assert v.ok, f"program {i}: {spec} ghost_final={ghost_final}\n" + "\n".join(v.problems)
