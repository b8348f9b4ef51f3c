"""The engine's reproducers (one per class of unsoundness once found), as tests.

Each program is the minimal one of its class; each test pins the correct answer and checks
that brute force, DPOR with and without state caching, and replay all give it (through the
differential oracle, which also replays every finding's schedule), with the exact execution
counts. Classes:

1. invariants reading through ``Shared.peek``, ``Lock.held_by``, ``is_freed`` were not
   re-checked after the steps that change what they read (wrong pass, replay missed it,
   brute force crashed);
2. a ``wait_until`` condition reading through those accessors was never woken (false hang
   under brute force, missed hang under DPOR);
3. DPOR counted the executions of its last visibility round only;
4. fingerprints from Python's ``hash()`` merged states (``hash(-1) == hash(-2)``), so state
   caching pruned an unexplored state and missed a final-check violation;
5. goals had no visibility proviso: DPOR missed a goal state that only one order of two
   independent writes passes through.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pfnlab.explore import (
    Check,
    Field,
    Instance,
    Lock,
    Program,
    Shared,
    free,
    is_freed,
    wait_until,
)
from pfnlab.explore.fingerprint import canon, field_key
from pfnlab.explore.runtime import Execution
from pfnlab.explore.schedule import Schedule, Step
from pfnlab.explore.search import Budget, explore, replay
from pfnlab.explore.search.dpor import explore_dpor
from tests.engine.oracle import Verdict, differential


class Var(Shared):
    v = Field(0)


def agreed(prog: Program) -> Verdict:
    """Brute force, DPOR (cache on and off) and replay agree on ``prog``; their verdict."""
    v = differential(prog)
    assert v.ok, "\n".join(v.problems)
    return v


def schedule(*threads: str) -> Schedule:
    return Schedule([Step(t, "") for t in threads])


# ---------------------------------------------------------------- 1: checks' accessors
def untracked_invariant(accessor: str) -> Program:
    """t0 makes the invariant false in one step; t1 and t2 write unrelated variables."""

    def build() -> Instance:
        x, y, z = Var("x"), Var("y"), Var("z")
        lock = Lock("L", mover=False)  # its owner is read by checks and conditions

        def t0() -> None:
            if accessor == "held_by":
                lock.acquire()
            elif accessor == "is_freed":
                free(x, "t0")
            else:
                x.v = 1

        def t1() -> None:
            y.v = 1

        def t2() -> None:
            z.v = 1

        fn: Callable[[], object]
        if accessor == "peek":
            fn = lambda: "x == 1" if x.peek("v") == 1 else None  # noqa: E731
        elif accessor == "held_by":
            fn = lambda: "L held" if lock.held_by() is not None else None  # noqa: E731
        else:
            fn = lambda: "x freed" if is_freed(x) else None  # noqa: E731
        return Instance(threads={"t0": t0, "t1": t1, "t2": t2}, invariants=[Check("inv", fn)])

    return Program(f"untracked-{accessor}", build)


@pytest.mark.parametrize(
    ("accessor", "message", "label"),
    [
        ("peek", "x == 1", "t0: t0: write x.v"),
        ("held_by", "L held", "t0: t0: lock L"),
        ("is_freed", "x freed", "t0: t0: free x"),
    ],
)
def test_repro_1_invariants_through_accessors_are_rechecked(
    accessor: str, message: str, label: str
) -> None:
    prog = untracked_invariant(accessor)
    # replay: the invariant is false right after t0's step, whatever ran before
    rr = replay(prog, schedule("t0", "t1", "t2"))
    assert rr.finding is not None
    assert (rr.finding.kind, rr.finding.prop, rr.finding.message) == ("invariant", "inv", message)
    assert rr.diverged_at == 1
    assert rr.message == "step 1: the execution already ended before t1: "
    rr = replay(prog, schedule("t2", "t1", "t0"))
    assert rr.finding is not None and rr.finding.message == message and not rr.diverged
    # brute force (which crashed) and DPOR: every maximal execution ends in the violation
    v = agreed(prog)
    assert v.brute.violations == {("invariant", "inv", message)}
    assert v.brute.final_states == set()
    assert v.brute.stats.executions == 5       # t0 | t1 t0 | t1 t2 t0 | t2 t0 | t2 t1 t0
    for red in v.dpor.values():
        assert red.violations == {("invariant", "inv", message)}
        # t0 | t1 t0 | t1 t2 t0 | t2 t0: t0's step ends every execution it runs in, so it
        # sleeps as dependent with every step (common.CUT_SHORT) and the trace where both
        # t1 and t2 ran first is explored too (with an ordinary sleep entry it was not)
        assert (red.stats.executions, red.stats.rounds) == (4, 1)
    (f,) = explore(prog).findings
    assert [str(s) for s in f.schedule] == [label]


# ---------------------------------------------------------------- 2: conditions' accessors
def wait_through(accessor: str) -> Program:
    """t0 changes what t1's condition reads; t1 waits for the condition."""

    def build() -> Instance:
        lock = Lock("L", mover=False)  # its owner is read by checks and conditions
        x = Var("x")

        def t0() -> None:
            if accessor == "peek":
                x.v = 1
            elif accessor == "is_freed":
                free(x, "t0")
            else:
                lock.acquire()
                lock.release()

        cond: Callable[[], object] = {
            "held_by": lambda: lock.held_by() is None,
            "owner": lambda: lock.owner is None,
            "held_by t0": lambda: lock.held_by() == "t0",
            "peek": lambda: x.peek("v") == 1,
            "is_freed": lambda: is_freed(x),
        }[accessor]

        def t1() -> None:
            wait_until(cond, accessor)

        return Instance(threads={"t0": t0, "t1": t1})

    return Program(f"wait-{accessor}", build)


@pytest.mark.parametrize(
    ("accessor", "hangs", "final", "executions"),
    [
        # t0 takes and drops L: L is free in the end, so t1 never hangs (brute force said it
        # did: nothing re-checked the condition; DPOR treated the wait as independent)
        # (brute force also interleaves the step after t1's passing wait: section 2)
        ("held_by", False, ("L", "None"), (5, 3, 3)),
        ("owner", False, ("L", "None"), (5, 3, 3)),  # the plain-field spelling
        # t1 needs t0 to hold L when t1 looks: if t0 drops L first, t1 hangs
        ("held_by t0", True, ("L", "None"), (6, 3, 4)),
        ("peek", False, ("x", "1"), (2, 2, 2)),
        ("is_freed", False, ("x", "freed"), (2, 2, 2)),
    ],
)
def test_repro_2_waits_through_accessors_wake(
    accessor: str, hangs: bool, final: tuple[str, str], executions: tuple[int, int, int]
) -> None:
    """Executions: brute force, DPOR with caching, DPOR without (caching prunes the
    second arrival at a state both orders reach)."""
    v = agreed(wait_through(accessor))
    hang = ("hang", "hang", f"every live thread is blocked: t1 waits for {accessor}")
    assert v.brute.violations == ({hang} if hangs else set())
    (state,) = v.brute.final_states
    objects = {name: (freed, dict(fields)) for name, freed, fields in state}
    name, value = final
    if value == "freed":
        assert objects[name][0]
    else:
        assert objects[name][1][{"L": "owner", "x": "v"}[name]] == value
    assert v.brute.stats.executions == executions[0]
    for cache, red in v.dpor.items():
        assert red.violations == v.brute.violations
        assert red.stats.rounds == 1
        assert red.stats.executions == executions[1 if cache else 2]


# ---------------------------------------------------------------- 3: executions per round
def short_circuit_invariant() -> Program:
    def build() -> Instance:
        x, y = Var("x"), Var("y")

        def t0() -> None:
            x.v = 1

        def t1() -> None:
            y.v = 1

        # reads y only once x == 1: round 1 treats y as invisible, round 2 does not
        inv = Check("both", lambda: "x = y = 1" if x.v == 1 and y.v == 1 else None)
        return Instance(threads={"t0": t0, "t1": t1}, invariants=[inv])

    return Program("rounds", build)


def test_repro_3_executions_are_counted_over_every_round() -> None:
    v = agreed(short_circuit_invariant())
    assert v.brute.violations == {("invariant", "both", "x = y = 1")}
    assert v.brute.stats.executions == 2
    for cache, red in v.dpor.items():
        # round 1: only x.v is visible, the writes commute: one execution (t0 t1), in which
        # the invariant reads y.v; round 2: both writes visible, both orders
        assert v.per_round[cache] == [1, 2]
        assert (red.stats.executions, red.stats.rounds) == (3, 2)
        assert red.stats.complete == 0 and red.stats.findings == 3
    # an execution budget counts every round too: 1 execution in round 1, 1 in round 2
    res = explore_dpor(short_circuit_invariant(), Budget(executions=2), stop_first=False)
    assert (res.stats.executions, res.stats.rounds, res.exhaustive) == (2, 2, False)
    assert res.coverage.startswith("budget reached after 2 executions")


# ---------------------------------------------------------------- 4: fingerprints
def minus_one_minus_two() -> Program:
    def build() -> Instance:
        x, y = Var("x"), Var("y")

        def t0() -> None:
            x.v = -1

        def t1() -> None:
            x.v = -2

        def t2() -> None:
            y.v = 1

        return Instance(
            threads={"t0": t0, "t1": t1, "t2": t2},
            final_checks=[Check("x-not-minus-1", lambda: "x == -1" if x.v == -1 else None)],
        )

    return Program("coll", build)


def test_repro_4_caching_keeps_states_that_hash_alike_apart() -> None:
    prog = minus_one_minus_two()
    v = agreed(prog)
    violation = ("final-check", "x-not-minus-1", "x == -1")
    assert v.brute.violations == {violation}
    # a final state whose final check fails is a final state too (the check is noted)
    assert v.brute.final_states == {(("x", False, (("v", str(n)),)), ("y", False, (("v", "1"),)))
                                    for n in (-1, -2)}
    assert v.brute.stats.executions == 6
    for red in v.dpor.values():
        assert red.violations == {violation}
        assert (red.stats.executions, red.stats.pruned) == (2, 0)
    assert v.dpor[True].stats.caching and v.dpor[True].stats.states == 4
    # the two end states differ only in x = -1 / x = -2: their fingerprints differ
    ends = []
    for order in ([0, 1, 2], [1, 0, 2]):
        ex = Execution(prog, check_invariants=False)
        for tid in order[:2]:
            ex.step(tid)
        ends.append(ex.fingerprint())
        ex.close()
    assert None not in ends and ends[0] != ends[1]


@pytest.mark.parametrize(
    "values",
    [
        (-1, -2),
        (1, True),
        (0, False, None),
        (1, 1.0, True),
        ((1,), (True,)),
        ((0,), (False,), (None,)),
        (((1, 2), 3), (1, (2, 3)), (1, 2, 3)),
        ((), frozenset(), "", None),
        (frozenset({1}), frozenset({True}), (1,)),
        (frozenset({(1, frozenset({-1}))}), frozenset({(1, frozenset({-2}))})),
        ("1", 1, b"1"),
        (("a", "b"), ("ab",), ("a", "", "b")),
    ],
)
def test_fingerprints_tell_distinct_values_apart(values: tuple[object, ...]) -> None:
    assert len({canon(v) for v in values}) == len(values)
    assert len({field_key("x", "v", v) for v in values}) == len(values)
    # and the same value is always the same key
    assert all(field_key("x", "v", v) == field_key("x", "v", v) for v in values)


def test_fingerprints_are_canonical_for_equal_values() -> None:
    assert canon(frozenset({1, 2, 3})) == canon(frozenset({3, 2, 1}))
    assert canon((1, frozenset({"a", "b"}))) == canon((1, frozenset({"b", "a"})))
    assert field_key("x", "v", -1) != field_key("y", "v", -1)
    assert field_key("x", "v", -1) != field_key("x", "w", -1)


# ---------------------------------------------------------------- 5: goals' visibility
def goal_between_writes(stable: bool = False) -> Program:
    def build() -> Instance:
        x0, x1 = Var("x0"), Var("x1")

        def t0() -> None:
            x0.v = 1

        def t1() -> None:
            x1.v = 1

        return Instance(
            threads={"t0": t0, "t1": t1},
            goals=[Check("x1-before-x0", lambda: x1.v == 1 and x0.v == 0, stable=stable)],
        )

    return Program("goal", build)


def test_repro_5_dpor_reaches_a_goal_state_of_one_order_only() -> None:
    prog = goal_between_writes()
    v = agreed(prog)
    assert v.brute.goals_reached == ["x1-before-x0"]
    for cache, red in v.dpor.items():
        assert red.goals_reached == ["x1-before-x0"] and red.goals_missed == []
        # round 1 sees only x1.v (x1 == 1 fails first); round 2 orders both writes
        assert v.per_round[cache] == [1, 2]
    for strategy in ("brute", "dpor"):
        for cache in (True, False):
            res = explore(prog, strategy=strategy, stop_first=False, cache=cache)
            assert res.goals_reached == ["x1-before-x0"] and res.goals_missed == []


def test_stable_goals_need_no_ordering() -> None:
    """A goal declared stable (once reached, reached for ever) is exempt from the proviso:
    with two independent writes DPOR then runs one execution. Here the declaration is true."""

    def build() -> Instance:
        x0, x1 = Var("x0"), Var("x1")

        def t0() -> None:
            free(x0, "t0")

        def t1() -> None:
            x1.v = 1

        return Instance(threads={"t0": t0, "t1": t1},
                        goals=[Check("x0-freed", lambda: is_freed(x0), stable=True)])

    v = agreed(Program("stable-goal", build))
    assert v.brute.goals_reached == ["x0-freed"]
    for red in v.dpor.values():
        assert red.goals_reached == ["x0-freed"]
        assert (red.stats.executions, red.stats.rounds) == (1, 1)
