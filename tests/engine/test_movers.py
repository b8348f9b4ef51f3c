"""Kernel-level steps: Lipton's movers for locks and SRCU, and summaries of calls.

Each reduction is tested three ways: a program it must shorten (its steps pinned), a
program it must not break (a deadlock, a wrong read it must refuse), and a differential
run against the same program with ``Program(reduce=False)``: every final state and every
violation must be the same, with no more executions.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import note as hypothesis_note
from hypothesis import strategies as st

from pfnlab.explore import (
    Check,
    Field,
    Ghost,
    Guarded,
    Instance,
    Lock,
    Program,
    Shared,
    Srcu,
    atomic,
    free,
    summarised,
    wait_for_change,
    wait_until,
)
from pfnlab.explore.search import Budget, explore
from pfnlab.explore.search.brute import explore_brute
from pfnlab.explore.search.dpor import explore_dpor
from tests.engine.oracle import compare_violations, stable_invariants, typed_final_states
from tests.engine.programs import WideSpec, wide_program, wide_source
from tests.engine.test_differential import wide_specs


class Var(Shared):
    v = Field(0)


def _steps(finding: Any) -> list[str]:
    return [str(s) for s in finding.schedule]


# ------------------------------------------------------------------ locks
def _critical_sections(reduce: bool) -> Program:
    """Two threads each take a lock, read-modify-write a counter under it, release it;
    the final check wants a lost update (there is none: the verdict is a pass)."""

    def build() -> Instance:
        lock, c = Lock("L"), Var("c")

        def inc() -> None:
            lock.acquire()
            c.v = c.v + 1
            lock.release()

        return Instance(threads={"t0": inc, "t1": inc},
                        final_checks=[Check("lost", lambda: None if c.v == 2 else "lost")])

    return Program("cs", build, reduce=reduce)


def test_a_lock_joins_the_accesses_next_to_it() -> None:
    """lock; read; write; unlock is two steps (acquire+read, write+release), not four."""
    coarse = explore_brute(_critical_sections(True), Budget(), stop_first=False)
    fine = explore_brute(_critical_sections(False), Budget(), stop_first=False)
    assert coarse.ok and fine.ok
    # two steps per thread against four (a held lock makes its acquirer not enabled: no
    # failed attempts): brute force runs the 2 orders of the two sections either way
    assert (coarse.stats.executions, coarse.stats.steps) == (2, 8)
    assert (fine.stats.executions, fine.stats.steps) == (2, 16)
    # the trace shows every operation; joined ones say so
    prog = _critical_sections(True)
    from pfnlab.explore.runtime import Execution

    ex = Execution(prog, trace=True)
    ex.step(0)
    assert [(s.action, s.field, s.joined) for s in ex.trace] == [
        ("lock", "owner", False), ("read", "v", True)]
    ex.step(0)
    assert [(s.action, s.joined) for s in ex.trace[2:]] == [("write", False),
                                                            ("unlock", True)]


def test_an_acquire_does_not_join_a_blocking_operation() -> None:
    """AB-BA: t0 holding A and t1 holding B is the deadlock; a step that took A and B at
    once (B was free when A was taken) would step over it."""

    def build() -> Instance:
        a, b = Lock("A"), Lock("B")

        def t0() -> None:
            a.acquire()
            b.acquire()
            b.release()
            a.release()

        def t1() -> None:
            b.acquire()
            a.acquire()
            a.release()
            b.release()

        return Instance(threads={"t0": t0, "t1": t1})

    (f,) = explore(Program("abba", build)).findings
    assert f.kind == "hang"
    # the hang is the state where each holds one lock and waits for the other: no thread
    # takes a step that fails (a held lock makes its acquirer not enabled)
    assert _steps(f) == ["t0: t0: lock A", "t1: t1: lock B"]
    assert f.details["waits"] == {"t0": "lock B held by t1", "t1": "lock A held by t0"}


def _transient_sections(hold: bool) -> Program:
    """t0 and t1 each take L, read their own variable and release L in one step; with
    ``hold`` t0 instead keeps L over a second step (it writes its variable after reading)."""

    def build() -> Instance:
        lock, x, y = Lock("L"), Var("x"), Var("y")

        def t0() -> None:
            lock.acquire()
            v = x.v
            if hold:
                x.v = v + 1
            lock.release()

        def t1() -> None:
            lock.acquire()
            _ = y.v
            lock.release()

        return Instance(threads={"t0": t0, "t1": t1})

    return Program("transient", build)


def test_critical_sections_within_one_step_commute() -> None:
    """A step that takes a lock and releases it again only needs it free: two such steps
    are independent (one execution), a section held over two steps is not (t1 may come
    before it or after it, and is not enabled in between: two executions)."""
    quick = explore_dpor(_transient_sections(False), Budget(), stop_first=False,
                         collect_final_states=True)
    held = explore_dpor(_transient_sections(True), Budget(), stop_first=False,
                        collect_final_states=True)
    assert quick.exhaustive and held.exhaustive
    assert quick.stats.executions == 1
    assert held.stats.executions == 2
    for hold, res in ((False, quick), (True, held)):
        ref = explore_brute(_transient_sections(hold), Budget(), stop_first=False,
                            collect_final_states=True)
        assert res.final_states == ref.final_states


def _reads_owner(where: str) -> Program:
    def build() -> Instance:
        lock, x = Lock("L"), Var("x")

        def holder() -> None:
            lock.acquire()
            x.v = 1
            lock.release()

        def other() -> None:
            if where == "condition":
                wait_until(lambda: lock.held_by() is None, "L free")
            elif where == "code":
                _ = lock.held_by()
            x.v = 2

        invariants = []
        if where == "invariant":
            invariants.append(Check("inv", lambda: "held" if lock.held_by() == "?" else None))
        return Instance(threads={"holder": holder, "other": other}, invariants=invariants)

    return Program(f"owner-{where}", build)


def test_reading_a_mover_locks_owner_is_an_error_that_says_what_to_do() -> None:
    for where, who in [("invariant", "check inv"), ("condition", "the condition of wait"),
                       ("code", "model code")]:
        res = explore(_reads_owner(where))
        assert res.findings, where
        f = res.findings[0]
        assert f.kind == "exception"
        assert who in f.message
        assert "Lock('L', mover=False)" in f.message


def test_the_holder_may_assert_it_holds_a_mover_lock() -> None:
    def build() -> Instance:
        lock = Lock("L")

        def thread(me: str) -> Any:
            def run() -> None:
                lock.acquire()
                assert lock.held_by() == me  # lockdep_assert_held
                lock.release()
            return run

        return Instance(threads={"t": thread("t"), "u": thread("u")})

    assert explore(Program("lockdep", build)).ok


# ------------------------------------------------------------------ SRCU
def _srcu_program(reduce: bool, extra_read: bool = False) -> Program:
    """A reader reads ``x`` inside an SRCU section; the updater clears ``alive``,
    synchronizes, then frees... here: sets x = -1. The reader must never see -1 while
    alive was true when it checked (the kill_dax pattern)."""

    def build() -> Instance:
        srcu, alive, x = Srcu("dax_srcu"), Var("alive"), Var("x")
        alive.v = 1
        seen = Var("seen")

        def reader() -> None:
            srcu.read_lock()
            if alive.v:
                seen.v = x.v
            srcu.read_unlock()

        def updater() -> None:
            alive.v = 0
            srcu.synchronize("synchronize_srcu")
            x.v = -1

        invariants = []
        if extra_read:
            invariants.append(Check("inv", lambda: "r" if len(srcu.readers) > 5 else None))
        return Instance(threads={"reader": reader, "updater": updater},
                        invariants=invariants,
                        final_checks=[Check("stale", lambda: "stale" if seen.v == -1 else None)])

    return Program("srcu", build, reduce=reduce)


def test_srcu_sections_are_movers_and_synchronize_waits_for_readers() -> None:
    coarse = explore_brute(_srcu_program(True), Budget(), stop_first=False,
                           collect_final_states=True)
    fine = explore_brute(_srcu_program(False), Budget(), stop_first=False,
                         collect_final_states=True)
    assert coarse.ok and fine.ok
    assert coarse.final_states == fine.final_states
    # (the step after a passing synchronize_srcu is a step of its own: docs/reductions.md
    # section 2)
    assert (coarse.stats.executions, fine.stats.executions) == (10, 26)


def test_only_synchronize_may_read_an_srcus_readers() -> None:
    (f, *_) = explore(_srcu_program(True, extra_read=True)).findings
    assert f.kind == "exception"
    assert "only dax_srcu.synchronize() may wait on an Srcu's readers" in f.message


# ------------------------------------------------------------------ call summaries
class Counter(Shared):
    n = Field(0)


def _summaries(use: bool, mutable_arg: bool = False) -> Program:
    """A reader calls a helper that reads a counter twice and returns whether it was
    positive; a writer bumps the counter. Summarised, what the helper read no longer
    splits states; the verdicts are the same."""

    def build() -> Instance:
        c, out = Counter("c"), Var("out")

        def positive(box: Any) -> bool:
            a = c.n
            b = c.n
            if isinstance(box, list):
                box.append(a)  # changes what the caller holds: must not be summarised
            return bool(a > 0 and b > 0)

        helper = summarised(positive) if use else positive

        def reader() -> None:
            box: Any = [] if mutable_arg else ()
            p = helper(box)
            q = helper(box)
            out.v = (p, q, len(box))

        def writer() -> None:
            atomic(c, "n", lambda n: (n + 1, None))
            atomic(c, "n", lambda n: (n + 1, None))

        return Instance(threads={"reader": reader, "writer": writer})

    return Program("summaries", build)


def test_call_summaries_merge_states_and_agree() -> None:
    for mutable in (False, True):
        runs = [explore_dpor(_summaries(use, mutable), Budget(), stop_first=False,
                             collect_final_states=True) for use in (False, True)]
        assert runs[0].final_states == runs[1].final_states
        assert runs[0].violations == runs[1].violations
        if mutable:  # not summarised: the same states
            assert runs[1].stats.states == runs[0].stats.states == 52
        else:
            assert (runs[1].stats.states, runs[0].stats.states) == (33, 52)


# ------------------------------------------------------------------ differential
@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(wide_specs())
# found by CI's draw (session 9): the last-writer ghost write between the lock and the
# increment, against another thread's
@example(WideSpec(threads=((("r", 0), ("r", 0), ("wc", 0, 0), ("ghost", 0), ("r", 0)),
                           (("cs", 0, (("ghost", 1), ("inc", 0))),)),
                  inits=(0,), nlocks=1, invariants=(), goals=(), finals=()))
# a stable invariant first violated by a free or by a ghost increment, which commute: DPOR
# reports one of the two messages (drawn once; compared by property since)
@example(WideSpec(threads=((("w", 1, 1), ("r", 1), ("gadd", 1)), (("free", "x0"), ("r", 0))),
                  inits=(0, 0), nlocks=0,
                  invariants=((("or", (("freed", "x0"), ("freed", "x0"), ("n", 1))), True),),
                  goals=(), finals=()))
# an invariant (not declared stable) over the ghost counter: the reduced step takes both
# increments of the critical section at once, so the first state that violates it has
# note.n == 2 where every lock operation a step of its own shows note.n == 1 first
@example(WideSpec(threads=((("cs", 0, (("ghost", 0), ("pr", 0))), ("ghost", 0)), (("r", 0),)),
                  inits=(0,), nlocks=1, invariants=((("and", (("n", 1),)), False),),
                  goals=(), finals=()))
# drawn by hypothesis: a plain read right after a critical section joins its step, so the
# free the fine-grained search puts between the release and that read is found at the
# section's read (a use after free either way, another access named)
@example(WideSpec(threads=((("cs", 0, (("r", 0),)), ("pr", 0), ("r", 0), ("r", 0), ("r", 0)),
                           (("free", "x0"),)),
                  inits=(0,), nlocks=1, invariants=(), goals=(), finals=()))
def test_reduced_steps_agree_with_every_intermediate_state(spec: WideSpec) -> None:
    """The oracle: the same program with ``reduce=False`` (every lock operation its own
    step) under brute force; the reduced program under brute force and cached DPOR.

    Ghost updates must commute (``Ghost``'s contract: they ride along with whatever step
    they fall in, so a reduction may move them across another thread's step): the wide
    generator's last-writer ghost writes become counter increments here. (Drawn as they
    are, ``t1: lock; g = 1; x += 1; unlock`` against ``t0: x = 0; g = 0`` reaches g == 0,
    x == 1 only where the lock's step ends before the increment.)"""
    spec = commuting_ghosts(spec)
    hypothesis_note(wide_source(spec))
    prog = wide_program(spec)
    fine = dataclasses.replace(prog, reduce=False)
    with typed_final_states():
        ref = explore_brute(fine, Budget(executions=20_000), stop_first=False,
                            collect_final_states=True)
        if not ref.exhaustive:
            return
        for res in (explore_brute(prog, Budget(), stop_first=False, collect_final_states=True),
                    explore_dpor(prog, Budget(), stop_first=False, collect_final_states=True)):
            assert res.exhaustive
            assert res.final_states == ref.final_states
            # a stable invariant's violation is compared by property: the search does not
            # order the steps that only change which state first violates it
            # (test_differential.py::test_stable_invariants_are_compared_by_property)
            # so is one that reads a ghost: ghost updates ride along with whatever step they
            # fall in (Ghost's contract), so the reduced step may show a later value first
            # and a use after free by property: a free the fine-grained search places
            # between a step's accesses is found at the reduced step's first access to the
            # object, which may be another one (docs/reductions.md section 5)
            ghostly = ghost_reading(spec)
            assert not compare_violations(apart(_no_uaf(ref.violations), ghostly),
                                          apart(_no_uaf(res.violations), ghostly),
                                          stable_invariants(prog))
            assert _by_kind(ref.violations) - _by_kind(_no_uaf(ref.violations)) == \
                _by_kind(res.violations) - _by_kind(_no_uaf(res.violations))
            assert ({v[:2] for v in ref.violations - apart(ref.violations, ghostly)}
                    == {v[:2] for v in res.violations - apart(res.violations, ghostly)})
            # each visibility round of DPOR runs at most brute force's executions
            assert res.stats.executions <= ref.stats.executions * max(res.stats.rounds, 1)


def apart(violations: set[tuple[str, str, str]], props: set[str]) -> set[tuple[str, str, str]]:
    """``violations`` without those of the invariants ``props``."""
    return {v for v in violations if not (v[0] == "invariant" and v[1] in props)}


def ghost_reading(spec: WideSpec) -> set[str]:
    """The invariants of ``spec`` (``inv0``, ...) whose condition reads a ghost (the
    ``("g", v)`` and ``("n", k)`` atoms)."""

    def reads_ghost(e: Any) -> bool:
        if isinstance(e, tuple) and len(e) == 2 and e[0] in ("g", "n") \
                and not isinstance(e[1], tuple):
            return True
        return isinstance(e, tuple) and any(reads_ghost(x) for x in e)

    return {f"inv{i}" for i, (cond, _stable) in enumerate(spec.invariants)
            if reads_ghost(cond)}


def commuting_ghosts(spec: WideSpec) -> WideSpec:
    """``spec`` with every ``("ghost", c)`` (a last-writer ghost write) made a ghost
    counter increment ``("gadd", 1)``, in nested critical sections and branches too."""
    def ops(seq: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(op(o) for o in seq)

    def op(o: tuple[Any, ...]) -> tuple[Any, ...]:
        if o[0] == "ghost":
            return ("gadd", 1)
        if o[0] in ("cs", "if"):
            return (o[0], o[1], ops(o[2]))
        return o

    return dataclasses.replace(spec, threads=tuple(ops(t) for t in spec.threads))


# ------------------------------------------------------------------ retry loops
def _retry(helper: bool) -> Program:
    """A reader retries until it sees the writer's second update; the writer bumps twice."""

    def build() -> Instance:
        seq, done = Var("seq"), Var("done")

        def reader() -> None:
            while True:
                s = seq.v
                if s == 2:
                    done.v = 1
                    return
                if helper:
                    wait_for_change(lambda: seq.v, s, "seq moves")

        def writer() -> None:
            atomic(seq, "v", lambda v: (v + 1, None))
            atomic(seq, "v", lambda v: (v + 1, None))

        return Instance(threads={"reader": reader, "writer": writer},
                        final_checks=[Check("done", lambda: None if done.v else "not done")])

    return Program("retry", build)


def test_a_retry_loop_terminates_with_wait_for_change() -> None:
    spin = explore(_retry(False), budget=Budget(max_steps=40), minimal=False)
    assert [f.kind for f in spin.findings] == ["no-progress"]  # spins up to max_steps
    res = explore(_retry(True), stop_first=False)
    assert res.ok and res.exhaustive


def test_nested_summarised_calls_keep_program_points_apart() -> None:
    """``outer`` returns what ``inner`` returned, after a read of its own: the point right
    after ``inner`` returned and the point after ``outer`` returned began at the same key
    and returned the same value; only the nesting depth tells them apart (a merge of the
    two once hid a leak from the minimiser)."""
    from pfnlab.explore.runtime import Execution

    def build() -> Instance:
        x, y, z = Var("x"), Var("y"), Var("z")

        @summarised
        def inner() -> int:
            return int(y.v)

        @summarised
        def outer() -> int:
            a = inner()
            _ = x.v
            return a

        def t() -> None:
            z.v = outer()

        return Instance(threads={"t": t})

    ex = Execution(Program("nested", build))
    prints = []
    while ex.enabled():
        prints.append(ex.fingerprint())
        ex.step(0)
    assert len(prints) == 3 and len(set(prints)) == 3  # at y.v, at x.v, at z.v = ...


# A random program of nested helper calls: each helper reads a variable, maybe calls
# another helper, maybe reads again, and returns something derived from what it read.
_HELPER = st.tuples(st.integers(0, 2), st.sampled_from(["none", "call", "call-read"]),
                    st.sampled_from(["first", "inner", "sum", "const"]))
_THREAD = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=2)


def _nested(helpers: list[tuple[int, str, str]], threads: list[list[tuple[int, int]]],
            use: bool) -> Program:
    def build() -> Instance:
        xs = [Var(f"x{i}") for i in range(3)]

        def make(k: int) -> Any:
            var, shape, ret = helpers[k]

            def helper() -> int:
                a = int(xs[var].v)
                b = fns[k + 1]() if shape != "none" and k + 1 < len(fns) else 0
                c = int(xs[(var + 1) % 3].v) if shape == "call-read" else 0
                return {"first": a, "inner": b, "sum": a + b + c, "const": 1}[ret]

            return summarised(helper) if use else helper

        fns = [make(k) for k in range(len(helpers))]

        def thread(ops: list[tuple[int, int]]) -> Any:
            def run() -> None:
                for k, target in ops:
                    v = fns[k % len(fns)]()
                    xs[target].v = v % 3
            return run

        return Instance(threads={f"t{i}": thread(ops) for i, ops in enumerate(threads)})

    return Program("nested", build)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_HELPER, min_size=1, max_size=3), st.lists(_THREAD, min_size=2, max_size=2))
def test_nested_summaries_agree_with_whole_histories(helpers: Any, threads: Any) -> None:
    """Summarised and plain helpers, brute force and cached DPOR: the same final states.
    Brute force is capped (a draw with long threads once took 170 s of CI): a program it
    cannot finish in 5,000 executions is not compared."""
    ref = explore_brute(_nested(helpers, threads, False), Budget(executions=5_000),
                        stop_first=False, collect_final_states=True)
    if not ref.exhaustive:
        return
    for use in (False, True):
        res = explore_dpor(_nested(helpers, threads, use), Budget(), stop_first=False,
                           collect_final_states=True)
        assert res.final_states == ref.final_states
        assert res.violations == ref.violations


def test_a_merge_of_nested_returns_would_lose_a_final_state() -> None:
    """The harm the depth prevents: ``outer`` returns ``inner``'s value plus what it reads
    after it; where that read gives 0, the point before the read and the point after
    ``outer`` returned would share a key, and DPOR would prune the order in which t1's
    write comes before the read (``z == 1``) as a revisit."""

    def build(use: bool) -> Any:
        def b() -> Instance:
            x, y, z, w = Var("x"), Var("y"), Var("z"), Var("w")

            def inner() -> int:
                return int(y.v)

            def outer() -> int:
                a = helper_in()
                return a + int(x.v)

            helper_in = summarised(inner) if use else inner
            helper_out = summarised(outer) if use else outer

            def t0() -> None:
                z.v = helper_out()

            def t1() -> None:
                w.v = z.v  # races with t0's write of z: DPOR tries t1 at the point after it
                x.v = 1

            return Instance(threads={"t0": t0, "t1": t1})
        return b

    ref = explore_brute(Program("n", build(False)), Budget(), stop_first=False,
                        collect_final_states=True)
    res = explore_dpor(Program("n", build(True)), Budget(), stop_first=False,
                       collect_final_states=True)
    assert len(ref.final_states) == 2  # z == 0 and z == 1
    assert res.final_states == ref.final_states


# ------------------------------------------------------------------ guarded fields
class KvmLike(Shared):
    seq = Guarded(0, by="lock", lockless_reads=True)
    spte = Guarded(0, by="lock")
    users = Field(1)

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.lock = Lock(f"{name}.lock")


def test_a_guarded_write_without_its_lock_is_a_finding() -> None:
    def build() -> Instance:
        k = KvmLike("kvm")

        def good() -> None:
            k.lock.acquire()
            k.spte = 1
            k.lock.release()

        def bad() -> None:
            k.spte = 2

        return Instance(threads={"good": good, "bad": bad})

    f = explore(Program("guard", build)).findings[0]
    assert (f.kind, f.prop) == ("assertion", "lock-guard")
    assert f.message == ("bad writes kvm.spte without holding kvm.lock (declared "
                         "Guarded(by='lock')) (in bad, tests/engine/test_movers.py:"
                         f"{_line('k.spte = 2')})")


def test_a_lockless_read_needs_lockless_reads() -> None:
    def build() -> Instance:
        k = KvmLike("kvm")

        def reader() -> None:
            _ = k.seq          # allowed: lockless_reads=True (a scheduling point)
            _ = k.spte         # not allowed

        return Instance(threads={"reader": reader})

    f = explore(Program("guard", build)).findings[0]
    assert f.message == ("reader reads kvm.spte without holding kvm.lock "
                         "(declared Guarded(by='lock')) (in reader, "
                         f"tests/engine/test_movers.py:{_line('# not allowed')})")


def _line(marker: str) -> int:
    """The line of this file that holds ``marker`` (once): where a finding points."""
    (n,) = [i for i, text in enumerate(Path(__file__).read_text().splitlines(), 1)
            if marker in text and "_line(" not in text]
    return n


def _guarded_program(reduce: bool, put_first: bool) -> Program:
    """A vCPU bumps seq and installs spte under the lock, then (``put_first``) drops its
    VM reference and reads spte again in the same critical section; the admin frees the
    VM once the last reference is gone. Reading after the put is a use after free that
    the free, enabled by the put, can reach: the guarded read after it must not ride."""

    def build() -> Instance:
        k = KvmLike("kvm")

        def vcpu() -> None:
            k.lock.acquire()
            k.spte = k.spte + 1
            if put_first:
                atomic(k, "users", lambda u: (u - 1, None))
            _ = k.spte
            k.lock.release()
            if not put_first:
                atomic(k, "users", lambda u: (u - 1, None))

        def admin() -> None:
            wait_until(lambda: k.users == 0, "users gone")
            free(k, "kvm_destroy_vm")

        return Instance(threads={"vcpu": vcpu, "admin": admin})

    return Program("guarded", build, reduce=reduce)


def test_guarded_accesses_ride_along_but_not_past_what_enables_a_free() -> None:
    for put_first in (False, True):
        program = _guarded_program(True, put_first)
        # the search learns that a thread frees a KvmLike (the admin does, in both
        # programs) and starts again: from then on a guarded access after a write in its
        # step is a step of its own
        coarse = explore_brute(program, Budget(), stop_first=False)  # (two rounds' steps)
        assert "KvmLike.~free" in program.knowledge
        assert coarse.exhaustive
        fine = explore_brute(_guarded_program(False, put_first), Budget(), stop_first=False)
        assert {f.key for f in coarse.findings} == {f.key for f in fine.findings}
        assert (("use-after-free", "use-after-free") in {f.key for f in coarse.findings}) \
            == put_first
        # (the code after a passing wait is a step of its own: docs/reductions.md section 2)
        assert coarse.stats.rounds == 2
        assert (coarse.stats.steps, fine.stats.steps) == ((48, 485) if put_first else (22, 69))


_INNER = st.sampled_from(["rs", "ws", "rq", "wq", "dec"])
_GOP = st.one_of(st.tuples(st.just("cs"), st.lists(_INNER, min_size=1, max_size=3)),
                 st.tuples(st.sampled_from(["lq", "dec"]), st.just([])))
_GTHREADS = st.lists(st.lists(_GOP, min_size=1, max_size=2), min_size=1, max_size=2)


def _random_guarded(threads: list[Any], freer: bool, reduce: bool) -> Program:
    def build() -> Instance:
        k = KvmLike("kvm")
        k.users = sum(op == "dec" or (kind == "cs" and "dec" in op)
                      for ops in threads for kind, op in ops for _ in [0]) or 1
        out = Var("out")

        def thread(ops: list[Any]) -> Any:
            def run() -> None:
                r = 0
                for kind, inner in ops:
                    if kind == "cs":
                        k.lock.acquire()
                        for a in inner:
                            if a == "rs":
                                r += k.spte
                            elif a == "ws":
                                k.spte = (r + 1) % 3
                            elif a == "rq":
                                r += k.seq
                            elif a == "wq":
                                k.seq = (k.seq + 1) % 3
                            else:
                                atomic(k, "users", lambda u: (u - 1, None))
                        k.lock.release()
                    elif kind == "lq":
                        r += k.seq
                    else:
                        atomic(k, "users", lambda u: (u - 1, None))
                out.v = r % 4
            return run

        ts = {f"t{i}": thread(ops) for i, ops in enumerate(threads)}
        if freer:
            def admin() -> None:
                wait_until(lambda: k.users <= 0, "users gone")
                free(k, "destroy")
            ts["admin"] = admin
        return Instance(threads=ts)

    return Program("rguard", build, reduce=reduce)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_GTHREADS, st.booleans())
def test_guarded_fields_agree_with_every_intermediate_state(threads: Any, freer: bool) -> None:
    """Guarded accesses (locked reads and writes riding along, lockless seq reads, VM
    reference drops that let an admin free the object) against the same program with
    every access a step: the same final states and the same violations, a use after free
    compared by kind and property (a free the fine-grained search places inside a critical
    section the reduced one places before the section's step, so the first guarded access
    of the step is the one reported, not a later one)."""
    with typed_final_states():
        # capped so that a draw with long threads costs seconds, not a minute (CI time)
        ref = explore_brute(_random_guarded(threads, freer, False), Budget(executions=5_000),
                            stop_first=False, collect_final_states=True)
        if not ref.exhaustive:
            return
        for res in (explore_brute(_random_guarded(threads, freer, True), Budget(),
                                  stop_first=False, collect_final_states=True),
                    explore_dpor(_random_guarded(threads, freer, True), Budget(),
                                 stop_first=False, collect_final_states=True)):
            assert res.final_states == ref.final_states
            assert _by_kind(res.violations) == _by_kind(ref.violations)


def _no_uaf(violations: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    return {v for v in violations if v[0] != "use-after-free"}


def _by_kind(violations: set[tuple[str, str, str]]) -> set[tuple[str, ...]]:
    return {(k, p) if k == "use-after-free" else (k, p, m) for k, p, m in violations}


def test_an_acquire_does_not_run_past_a_write_an_unstable_check_may_see() -> None:
    """Found by the long differential run: the state right after an acquire is not only
    the state before it plus the owner, when the code after the acquire writes (here a
    ghost counter). An unstable invariant false only there must still be reported; stable
    checks lose nothing (a stable violation persists), so only then does the step stop."""

    class Ledger(Shared):
        n = Ghost(0)

    def build(stable: bool) -> Any:
        def b() -> Instance:
            lock, x, led = Lock("L"), Var("x"), Ledger("led")

            def t0() -> None:
                lock.acquire()
                led.n = led.n + 1
                x.v = 1
                lock.release()

            inv = Check("mid", lambda: "inside" if led.n == 1 and x.v == 0 else None,
                        stable=stable)
            return Instance(threads={"t0": t0}, invariants=[inv])
        return b

    res = explore(Program("unstable", build(False)))
    assert [(f.prop, f.message) for f in res.findings] == [("mid", "inside")]
    assert _steps(res.findings[0]) == ["t0: t0: lock L"]
    # the acquire stops before the write only when an unstable check is there to see it
    from pfnlab.explore.runtime import Execution

    for stable, after_one_step in ((False, "write x.v"), (True, None)):
        ex = Execution(Program("joins", build(stable)))
        ex.step(0)
        op = ex.threads[0].op
        assert (op.describe() if op is not None else None) == after_one_step


def test_brute_force_after_a_promotion_runs_its_rounds_once() -> None:
    """explore_brute starts again itself when a thread frees a class with guarded fields;
    the explore() wrapper must not run the whole search once more on top (it did: twice
    the work, and the executions counted twice)."""
    direct = explore_brute(_guarded_program(True, True), Budget(), stop_first=False)
    wrapped = explore(_guarded_program(True, True), strategy="brute", minimal=False,
                      stop_first=False)
    assert wrapped.exhaustive and direct.exhaustive
    assert wrapped.stats.executions == direct.stats.executions
