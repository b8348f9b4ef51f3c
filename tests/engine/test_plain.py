"""Plain fields: not scheduling points, checked by the happens-before race detector.

- must-find: a plain field written without the lock its readers hold is a data race; a
  plain read that a free does not order is a use after free;
- must-pass: a race-free program (every plain access under the field's lock) has no finding;
- differential: on random race-free programs, plain fields (coarse steps) and the same
  program with every field a scheduling point reach the same final states and violations,
  with no more executions;
- operations: a thread given as a list of operations is identified, when one starts, by
  the operations left; that merges states that differ only in dead history, and changes
  no verdict.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfnlab.explore import (
    Check,
    Field,
    Instance,
    Lock,
    Plain,
    Program,
    Shared,
    atomic,
    free,
    wait_until,
)
from pfnlab.explore.findings import DATA_RACE, USE_AFTER_FREE
from pfnlab.explore.search import explore
from pfnlab.explore.search.brute import explore_brute
from pfnlab.explore.search.common import Budget
from pfnlab.explore.search.dpor import explore_dpor


class PVar(Shared):
    """A variable whose accesses are plain."""

    v = Plain(0)


class FVar(Shared):
    """The same variable with every access a scheduling point."""

    v = Field(0)


def test_unlocked_write_of_a_plain_field_is_a_data_race() -> None:
    def build() -> Instance:
        lock = Lock("mmu_lock")
        spte = PVar("spte")

        def installer() -> None:
            lock.acquire()
            spte.v = 1
            lock.release()

        def zapper() -> None:  # forgets mmu_lock
            spte.v = 0

        return Instance(threads={"vcpu0": installer, "admin": zapper})

    res = explore(Program("race", build))
    assert [f.key for f in res.findings] == [(DATA_RACE, DATA_RACE)]
    f = res.findings[0]
    assert f.message == (
        "data race on spte.v: vcpu0 writes it in installer while admin's earlier write of it "
        "is not ordered before by any lock or marked access (make the field a Field if the "
        "race is intended)"
    )
    # admin's unlocked write runs before any scheduling point; vcpu0's locked one races it
    assert [(s.thread, s.label) for s in f.schedule] == [("vcpu0", "installer: lock mmu_lock")]


def test_locked_plain_accesses_hold_and_are_not_scheduling_points() -> None:
    def build(cls: type) -> Any:
        def b() -> Instance:
            lock = Lock("lock")
            x = cls("x")

            def inc() -> None:
                lock.acquire()
                x.v = x.v + 1
                lock.release()

            return Instance(
                threads={"t0": inc, "t1": inc},
                final_checks=[Check("sum", lambda: None if x.v == 2 else f"x = {x.v}")],
            )
        return b

    plain = explore(Program("plain", build(PVar)))
    marked = explore(Program("marked", build(FVar)))
    assert plain.ok and marked.ok
    assert plain.stats.steps < marked.stats.steps


def test_plain_read_the_free_does_not_order_is_a_use_after_free() -> None:
    """Dan's race in miniature: check 'valid', then read the memmap, unpinned."""

    class Section(Shared):
        live = Field(True)

    def build() -> Instance:
        sec = Section("section")
        page = PVar("page")

        def walker() -> None:
            if sec.live:
                _ = page.v

        def unbind() -> None:
            sec.live = False
            free(page, ("no-metadata-after-teardown", "memmap removed"))

        return Instance(threads={"walker": walker, "unbind": unbind})

    res = explore(Program("walker", build))
    assert [f.key for f in res.findings] == [(USE_AFTER_FREE, "no-metadata-after-teardown")]
    assert res.findings[0].message == (
        "walker reads page.v with nothing ordering it before unbind frees it (memmap "
        "removed): in another interleaving the access comes after the free"
    )


def test_a_wait_on_a_plain_field_written_without_ordering_is_a_race() -> None:
    def build() -> Instance:
        flag = PVar("flag")

        def setter() -> None:
            flag.v = 1

        def waiter() -> None:
            wait_until(lambda: flag.v == 1, "flag")

        return Instance(threads={"setter": setter, "waiter": waiter})

    res = explore(Program("wait", build), stop_first=False)
    assert [f.key for f in res.findings] == [(DATA_RACE, DATA_RACE)]


# ------------------------------------------------------------------ differential
# A random race-free program: each thread is a list of critical sections; a section takes
# the lock of one variable group and does reads/writes/increments of that group's
# variables. Variables are plain in one build and marked in the other.

_OP = st.tuples(st.sampled_from(["inc", "set", "copy"]), st.integers(0, 1),
                st.integers(-2, 2))
_SECTION = st.tuples(st.integers(0, 1), st.lists(_OP, min_size=1, max_size=2))
_PROGRAM = st.one_of(  # two threads of up to two sections, or three of one (CI budget)
    st.lists(st.lists(_SECTION, min_size=1, max_size=2), min_size=2, max_size=2),
    st.lists(st.lists(_SECTION, min_size=1, max_size=1), min_size=3, max_size=3),
)


def _random_program(desc: list[Any], cls: type) -> Program:
    def build() -> Instance:
        locks = [Lock(f"L{g}") for g in range(2)]
        vars_ = [[cls(f"x{g}{i}") for i in range(2)] for g in range(2)]
        marks = FVar("marks")  # a marked counter outside every lock: real interleaving

        def thread(sections: list[Any]) -> Any:
            def run() -> None:
                for g, ops in sections:
                    locks[g].acquire()
                    for kind, i, k in ops:
                        x = vars_[g][i]
                        if kind == "inc":
                            x.v = x.v + 1
                        elif kind == "set":
                            x.v = k
                        else:
                            x.v = vars_[g][1 - i].v
                    locks[g].release()
                    atomic(marks, "v", lambda m: (m + 1, None))
            return run

        def final() -> str | None:
            total = sum(x.v for grp in vars_ for x in grp)
            return "sum is 3" if total == 3 else None

        return Instance(
            threads={f"t{i}": thread(d) for i, d in enumerate(desc)},
            final_checks=[Check("sum", final)],
        )

    return Program(f"random-{cls.__name__}", build)


def _outcome(prog: Program, strategy: str, cache: bool = True) -> tuple[set[Any], set[Any], int]:
    if strategy == "brute":
        r = explore_brute(prog, Budget(), stop_first=False, collect_final_states=True)
    else:
        r = explore_dpor(prog, Budget(), cache=cache, stop_first=False,
                         collect_final_states=True)
    # final states compare values by object name; plain and marked builds share names
    finals = {tuple((n, fr, tuple(v for _f, v in fl)) for n, fr, fl in s)
              for s in r.final_states}
    # executions not cut by a sleep set: the traces explored (sleep-set-blocked runs are
    # source-DPOR's own cost, the same whatever the step size)
    return finals, r.violations, r.stats.executions - r.stats.sleep_blocked


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_PROGRAM)
def test_plain_fields_agree_with_fine_grained_search(desc: list[Any]) -> None:
    """The oracle is the fine-grained program (every access and every lock operation a
    scheduling point: ``reduce=False``) under uncached DPOR, itself checked against brute
    force by test_differential.py."""
    fine = dataclasses.replace(_random_program(desc, FVar), reduce=False)
    fine_states, fine_viol, fine_execs = _outcome(fine, "dpor", cache=False)
    runs = [("dpor", True), ("dpor", False)]
    if sum(len(t) for t in desc) <= 3:
        runs.append(("brute", False))
    for strategy, cache in runs:
        states, viol, execs = _outcome(_random_program(desc, PVar), strategy, cache)
        assert not any(k == DATA_RACE for k, _p, _m in viol)
        assert states == fine_states
        assert viol == fine_viol
        if strategy == "dpor" and cache:
            # no more executions than the fine-grained traces (the cached coarse search
            # keeps happens-before facts in its states, so it can split states a cached
            # fine-grained search merges: compare with the traces themselves)
            assert execs <= fine_execs


# ------------------------------------------------------------------ operations
def test_operations_merge_dead_history_and_agree() -> None:
    """A thread given as operations: what a finished operation read does not split states."""

    def build(as_ops: bool) -> Any:
        def b() -> Instance:
            x, y = FVar("x"), FVar("y")

            def step() -> None:
                _ = x.v  # read and dropped when the operation ends
                atomic(y, "v", lambda v: (v + 1, None))

            def writer() -> None:
                x.v = 1
                x.v = 2

            reader: Any = [step, step, step] if as_ops else (lambda: [step() for _ in "abc"])
            return Instance(threads={"reader": reader, "writer": writer},
                            final_checks=[Check("y", lambda: None if y.v == 3 else "y")])
        return b

    ops = explore_dpor(Program("ops", build(True)), Budget(), stop_first=False,
                       collect_final_states=True)
    plain = explore_dpor(Program("one", build(False)), Budget(), stop_first=False,
                         collect_final_states=True)
    assert ops.final_states == plain.final_states
    assert ops.violations == plain.violations == set()
    assert ops.stats.states < plain.stats.states
