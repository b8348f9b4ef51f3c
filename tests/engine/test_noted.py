"""Findings that do not end their execution, and properties masked by those that do
(pfnlab/explore/runtime/checks.py, docs/reductions.md section 9)."""

from __future__ import annotations

from pfnlab.explore import Check, Field, Ghost, Instance, Program, Shared, fail, free
from pfnlab.explore.search import Budget, explore, replay
from pfnlab.explore.search.common import masked, not_established
from tests.engine.oracle import differential


class Obj(Shared):
    v = Field(0)


class Log(Shared):
    events = Ghost(())


def _leak_then_ad(halt_first: bool = False) -> Program:
    """t0 'leaks' (a stable invariant), then 'sets A/D' (another one), then a final check
    fails; with ``halt_first`` a fail() between the two cuts the execution."""

    def build() -> Instance:
        log, x = Log("log"), Obj("x")

        def t0() -> None:
            x.v = 1
            log.events = (*log.events, "leak")
            x.v = 2
            if halt_first:
                fail("bug-on", "BUG_ON(x == 2)")
            log.events = (*log.events, "ad")
            x.v = 3

        def has(ev: str) -> str | None:
            return f"{ev} event" if ev in log.events else None

        return Instance(
            threads={"t0": t0},
            invariants=[Check("leak", lambda: has("leak"), "refs", stable=True),
                        Check("ad", lambda: has("ad"), "ad", stable=True)],
            final_checks=[Check("x", lambda: "x is 3" if x.v == 3 else None, "final-x"),
                          Check("y", lambda: "x is odd" if x.v % 2 else None, "final-odd")],
        )

    return Program("leak-then-ad", build)


def test_every_property_records_its_own_first_violation() -> None:
    res = explore(_leak_then_ad(), stop_first=False)
    got = {(f.kind, f.prop): f for f in res.findings}
    assert set(got) == {("invariant", "refs"), ("invariant", "ad"),
                        ("final-check", "final-x"), ("final-check", "final-odd")}
    # each finding's schedule ends where it arose; its minimal trace ends there too
    assert len(got["invariant", "refs"].schedule) < len(got["invariant", "ad"].schedule)
    assert got["invariant", "refs"].trace[-1].ghosts == [("log", "events", (), ("leak",))]
    assert got["invariant", "ad"].trace[-1].ghosts == [("log", "events", ("leak",),
                                                        ("leak", "ad"))]
    assert res.masked_by == {}
    assert not_established(res, ["refs", "ad", "final-x", "final-odd"]) == {}


def test_a_replay_finds_the_noted_finding_it_was_given() -> None:
    res = explore(_leak_then_ad(), stop_first=False)
    prog = _leak_then_ad()
    for f in res.findings:
        rr = replay(prog, f.schedule)
        g = rr.find(f.key)
        assert g is not None and g.message == f.message
    # a schedule running to the end shows all four; ``finding`` is the last noted one
    whole = max(res.findings, key=lambda f: len(f.schedule)).schedule
    rr = replay(prog, whole)
    assert [f.prop for f in rr.findings] == ["refs", "ad", "final-x", "final-odd"]
    assert rr.finding is not None and rr.finding.prop == "final-odd"


def test_a_halting_finding_masks_what_it_cut() -> None:
    res = explore(_leak_then_ad(halt_first=True), stop_first=False)
    assert {(f.kind, f.prop) for f in res.findings} == {("invariant", "refs"),
                                                         ("assertion", "bug-on")}
    assert res.masked_by == {"bug-on": 1}
    assert masked(res, "ad") == "masked by bug-on in 1 execution"
    assert not_established(res, ["refs", "ad", "final-x", "bug-on"]) == {
        "ad": "masked by bug-on in 1 execution",
        "final-x": "masked by bug-on in 1 execution",
    }


def test_an_unstable_invariant_still_halts() -> None:
    def build() -> Instance:
        x = Obj("x")

        def t0() -> None:
            x.v = 1
            x.v = 2

        return Instance(threads={"t0": t0},
                        invariants=[Check("one", lambda: "x is 1" if x.v == 1 else None),
                                    Check("two", lambda: "x is 2" if x.v == 2 else None)])

    res = explore(Program("unstable", build), stop_first=False)
    assert [f.prop for f in res.findings] == ["one"]
    assert masked(res, "two") == "masked by one in 1 execution"


def test_a_hang_masks_nothing() -> None:
    from pfnlab.explore import wait_until

    def build() -> Instance:
        x = Obj("x")

        def t0() -> None:
            wait_until(lambda: x.v == 1, "x becomes 1")

        return Instance(threads={"t0": t0},
                        final_checks=[Check("never", lambda: "x is 0" if x.v == 0 else None)])

    res = explore(Program("hang", build), stop_first=False)
    assert [f.kind for f in res.findings] == ["hang"]
    assert res.masked_by == {}


def test_going_on_agrees_with_brute_force_across_threads() -> None:
    """Two threads, a stable invariant made false by either order, a free and a use after
    it, and final checks: brute force, DPOR with and without caching agree on every
    violation, and replay reproduces each."""

    def build() -> Instance:
        log, x, y = Log("log"), Obj("x"), Obj("y")

        def t0() -> None:
            x.v = 1
            log.events = (*log.events, "a")
            y.v = 1

        def t1() -> None:
            log.events = (*log.events, "b")
            if x.v == 0:
                free(y, "t1")

        return Instance(
            threads={"t0": t0, "t1": t1},
            invariants=[Check("both", lambda: "a and b" if {"a", "b"} <= set(log.events)
                              else None, "ab", stable=True)],
            final_checks=[Check("x", lambda: "x set" if x.v == 1 else None, "fx")],
        )

    v = differential(Program("two-threads", build))
    assert v.ok, v.problems
    assert {(k, p) for k, p, _m in v.brute.violations} == {
        ("invariant", "ab"), ("final-check", "fx"), ("use-after-free", "use-after-free")}


def test_stop_first_stops_at_a_noted_finding() -> None:
    res = explore(_leak_then_ad(), stop_first=True, budget=Budget(executions=10))
    assert [f.prop for f in res.findings] == ["refs"]


def test_a_check_returning_a_bool_is_a_model_error() -> None:
    """False would read as "holds": the check must return None or a message (issue 13)."""

    def build() -> Instance:
        x = Obj("x")

        def t0() -> None:
            x.v = 1

        return Instance(threads={"t0": t0},
                        invariants=[Check("x-is-0", lambda: x.v == 0, "x0")])

    res = explore(Program("bool-check", build), stop_first=False)
    assert [(f.kind, f.prop) for f in res.findings] == [("exception", "exception")]
    assert res.findings[0].message.startswith("check 'x-is-0' returned True: an invariant")


def test_a_re_executed_prefix_does_not_note_a_later_message() -> None:
    """Found by the CI run of test_movers (hypothesis seed 2475...): t1 increments a ghost
    before its first step (n = 1 in the initial state, the stable invariant is false there),
    t3 increments it again under a lock. A re-executed prefix ends at n = 2; noting the
    invariant there gave the message "n=2", which no execution shows first."""
    from pfnlab.explore import Lock
    from pfnlab.explore.search.brute import explore_brute
    from pfnlab.explore.search.common import Budget

    def build() -> Instance:
        x, lock, log = Obj("x"), Lock("L0"), Counter("note")

        def t1() -> None:
            log.n = log.n + 1
            _ = x.v
            _ = x.v

        def t3() -> None:
            lock.acquire()
            log.n = log.n + 1
            lock.release()
            _ = x.v

        return Instance(threads={"t1": t1, "t3": t3},
                        invariants=[Check("inv0", lambda: f"n={log.n}" if log.n >= 1
                                          else None, stable=True)])

    prog = Program("replayed-prefix", build)
    res = explore_brute(prog, Budget(), stop_first=False)
    assert res.violations == {("invariant", "inv0", "n=1")}
    assert {(f.kind, f.message) for f in explore(prog, stop_first=False).findings} == {
        ("invariant", "n=1")}


class Counter(Shared):
    n = Ghost(0)


def _goal_then(halt: str) -> Program:
    """t0 reaches its goal (a ghost write) and, in the same step, halts: by ``fail()``, or
    by making an unstable invariant false."""

    def build() -> Instance:
        log, x = Log("log"), Obj("x")

        def t0() -> None:
            x.v = 1
            log.events = (*log.events, "armed")
            if halt == "fail":
                fail("bug-on", "BUG_ON(armed)")

        return Instance(
            threads={"t0": t0},
            invariants=[Check("x-zero", lambda: "x is 1" if x.v == 1 else None)]
            if halt == "invariant" else [],
            goals=[Check("armed", lambda: "armed" in log.events, stable=True)])

    return Program(f"goal-then-{halt}", build)


def test_a_goal_reached_in_the_step_that_halts_is_reached() -> None:
    """Issue 28: the checks after a step were skipped once it had a halting finding, so a
    goal reached in that very step was missed ("goals never reached")."""
    for halt in ("fail", "invariant"):
        res = explore(_goal_then(halt), stop_first=False)
        assert [f.kind for f in res.findings] == ["assertion" if halt == "fail"
                                                 else "invariant"]
        assert res.goals_reached == ["armed"] and res.goals_missed == []
        v = differential(_goal_then(halt))
        assert v.ok, v.problems
