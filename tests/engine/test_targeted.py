"""Issue 25, item 2: every reduction against an independent reference, on programs drawn
to break its assumption (tests/engine/targeted.py: the profiles), with every search the
engine offers (tests/engine/against_reference.py). ``bench/targeted.py`` runs each
profile on tens of thousands of programs; here a fixed sample of each, the programs the
engine got wrong before (as found by this comparison), and the reference itself on
programs whose answer is known."""

from __future__ import annotations

import random

import pytest

from tests.engine import reference, targeted
from tests.engine.against_reference import compare
from tests.engine.targeted import PROFILES, Spec

#: per profile, in CI (bench/targeted.py runs 10,000 and more)
SAMPLE = 100


@pytest.mark.parametrize("profile", PROFILES)
def test_the_engine_agrees_with_the_reference(profile: str) -> None:
    bad = []
    for i in range(SAMPLE):
        spec = targeted.draw(random.Random(f"ci:{profile}:{i}").randint, profile)
        problems = compare(spec, seed=i, local=i == 0)  # one run on worker processes
        if problems:
            bad.append((i, spec, problems))
    assert not bad, "\n".join(f"#{i} {spec}\n  " + "\n  ".join(p) for i, spec, p in bad[:2])


#: programs the engine got wrong before issue 25's fixes (each found by the comparison
#: above on the code as it was): what it did, and what the reference says
REGRESSIONS = [
    # a stable read joined to t2's step, overtaken by t1's write: a wrong pass
    (Spec(1, (("t0",),), ((("inc", "o0", "p"), ("rd", "o0", "s"), ("fail", 2),
                           ("wr", "o0", "p", 2)),
                          (("wr", "o0", "s", 2), ("wait", ("eq", "o0", "v", 2)),
                           ("rd", "o0", "p")),
                          (("wr", "o0", "v", 0),))),
     "missed ('assertion', 'bad')"),
    # a promotion made in the coordinator's first steps: "thread ... is not deterministic"
    (Spec(1, (("t1", "t2"),), ((("rd", "o0", "t"), ("fail", 1), ("rd", "o0", "s"),
                                ("fail", 2)),
                               (("rd", "o0", "s"), ("fail", 2), ("rd", "o0", "t"),
                                ("fail", 1), ("rd", "o0", "s"), ("fail", 1), ("free", "o0")),
                               (("wr", "o0", "v", 0),))),
     "the parallel search crashed"),
    # a thread creating an object once checkpoints are on: AssertionError in the step memo
    (Spec(1, (("t0",),), ((("rd", "o0", "v"), ("freeref", "o0")),
                          (("rd", "o0", "v"), ("wait", ("eq", "o0", "v", 0))),
                          (("rd", "o0", "v"), ("alloc", "o0", 1)))),
     "DPOR crashed"),
    # a waiter polling a freed object: reported as a hang, the use after free missed
    (Spec(2, (("t1",), ()), ((("wr", "o0", "v", 0), ("wr", "o0", "s", 2),
                              ("wait", ("eq", "o1", "v", 0))),
                             (("wait", ("eq", "o1", "v", 2)),),
                             (("rd", "o0", "s"), ("fail", 2), ("pin", "o1", "t1"),
                              ("free", "o1")))),
     "a false hang and a missed use after free"),
    # t1 fails in its initial run, on a value read from a Plain field another thread may
    # write: the race was never seen (the execution ended in its initial state)
    (Spec(1, ((),), ((("wr", "o0", "v", 2), ("wr", "o0", "p", 0)),
                     (("wr", "o0", "p", 2), ("rd", "o0", "p"), ("fail", 2)))),
     "a data race masked by a failure before the thread's first step"),
    # an SRCU section left by a thread that never entered one, after another entered one
    (Spec(2, ((), ()), ((("srl",), ("rd", "o0", "q")),
                        (("sru",), ("free", "o0"), ("ulk", "o0"), ("wr", "o1", "g", 1)))),
     "missed the use after free"),
]


@pytest.mark.parametrize(("spec", "was"), REGRESSIONS,
                         ids=[w for _s, w in REGRESSIONS])
def test_programs_the_engine_got_wrong_agree_now(spec: Spec, was: str) -> None:
    assert compare(spec, seed=1, local=True) == []


# ------------------------------------------------------------------ the reference itself
def test_the_reference_finds_a_stable_read_overtaken_by_a_write() -> None:
    """repro 6 as a targeted program: t0 pins o0 for good and reads o0.s after a step;
    t1 writes o0.s once it sees that step."""
    spec = Spec(1, (("t0",),), ((("wr", "o0", "v", 1), ("rd", "o0", "s"), ("fail", 1),
                                 ("rd", "o0", "pins")),
                                (("rd", "o0", "v"), ("if", 1, (("wr", "o0", "s", 1),)))))
    out = reference.run(spec)
    assert out.findings == {("assertion", "bad")}
    assert len(out.final_states) == 2  # t1 saw v = 0 (s stays 0) or wrote s after t0 read


def test_the_reference_orders_a_hand_off_through_a_free() -> None:
    """repro 7: the plain read after the wait always follows the write: no race; without
    the wait, the two plain accesses race."""
    ordered = Spec(2, ((), ()), ((("wr", "o0", "p", 1), ("free", "o1")),
                                 (("wait", ("freed", "o1")), ("rd", "o0", "p"))))
    assert reference.run(ordered).findings == set()
    racy = Spec(2, ((), ()), ((("wr", "o0", "p", 1), ("free", "o1")),
                              (("rd", "o0", "p"),)))
    assert reference.run(racy).findings == {("data-race", "data-race")}


def test_the_reference_finds_misused_primitives_and_hangs() -> None:
    assert reference.run(Spec(1, ((),), ((("rel", 0),), (("rd", "o0", "v"),)))).findings \
        == {("assertion", "lock-balance")}
    assert reference.run(Spec(1, ((),), ((("sru",),),))).findings == \
        {("assertion", "lock-balance")}
    assert reference.run(Spec(1, ((),), ((("wr", "o0", "g", 1),),))).findings == \
        {("assertion", "lock-guard")}
    assert reference.run(Spec(1, ((),), ((("acq", 0), ("acq", 0)),))).findings == \
        {("hang", "hang")}
    # the waiter is blocked until the free; then its next poll reads freed memory
    out = reference.run(Spec(1, ((),), ((("free", "o0"),), (("wait", ("eq", "o0", "v", 1)),))))
    assert out.findings == {("use-after-free", "use-after-free")}
