"""The engine's second set of reproducers (``shared/engine-repros`` 6-10, and 11 found
while arguing section 11 of docs/reductions.md), as tests.

Each pins the right answer, taken from a search that does not use the reduction at fault:
brute force of ``Program(reduce=False)`` (every stable read a step of its own) for the
stable-field classes, the program's definition for the race detector's (the accesses are
never concurrent: no finding), brute force for the rest. Each search the issue names must
give it: DPOR with and without state caching, brute force, and the parallel search with two
worker processes (``--jobs 2``) and two simulated ones. Classes:

6. a write or free of a Stable field promoted it only if a *live* thread pinned it; DPOR
   explored the order in which the pinning thread had finished: a wrong pass;
7. a ``wait_until`` passing on ``is_freed`` did not acquire what the free released: a false
   data race;
8. a Stable read joined to its step under the reader's pin did not acquire what the
   field's last write released: a false data race;
9. a promotion made by the parallel search's coordinator (its first steps) did not restart
   the search: "thread ... is not deterministic", or findings whose schedule does not replay;
10. a thread creating a shared object after the search took checkpoints: AssertionError in
    the step memo and in snapshot rebuild;
11. a pin released by *another* thread between the pinning thread's step and its joined
    read, then the field written with no pin left to announce it: a wrong pass that brute
    force of the reduced program shared (section 11, "a pin its holder did not release").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pfnlab.explore import (
    Field,
    Guarded,
    Instance,
    Lock,
    Plain,
    Program,
    Shared,
    Stable,
    atomic,
    fail,
    free,
    is_freed,
    wait_until,
)
from pfnlab.explore.knowledge import ALLOCATES
from pfnlab.explore.search import Budget, Result, explore, replay
from pfnlab.explore.search.brute import explore_brute
from pfnlab.explore.search.parallel import InProcess, LocalProcesses, explore_parallel

Build = Callable[[], Instance]


class Obj(Shared):
    v = Field(0)
    pins = Field(())
    s = Stable(0, pinned=lambda o, who: who in o.pins)


class Data(Shared):
    v = Field(0)
    p = Plain(0)


def keys(res: Result) -> list[tuple[str, str]]:
    return sorted(f.key for f in res.findings)


def searches(name: str, build: Build) -> dict[str, tuple[Program, Result]]:
    """Every search the issue names, each on a Program of its own (promotions belong to a
    program: a search run first would hand the next one what it learnt)."""
    out: dict[str, tuple[Program, Result]] = {}

    def run(who: str, search: Callable[[Program], Result]) -> None:
        prog = Program(f"{name}/{who}", build)
        out[who] = (prog, search(prog))

    run("brute", lambda p: explore_brute(p, Budget(), stop_first=False))
    run("dpor cached", lambda p: explore(p, stop_first=False, minimal=False))
    run("dpor uncached", lambda p: explore(p, stop_first=False, minimal=False, cache=False))
    for depth in (1, 2):
        run(f"2 simulated workers, depth {depth}", lambda p, d=depth: explore_parallel(
            p, Budget(), InProcess(2, seed=d), stop_first=False, depth=d))
    run("--jobs 2", lambda p: explore(p, stop_first=False, minimal=False,
                                      backend=LocalProcesses(2)))
    return out


def agree(name: str, build: Build,
          right: list[tuple[str, str]]) -> dict[str, tuple[Program, Result]]:
    """Every search finds exactly ``right``, exhaustively, and every finding replays (on
    the search's program, which keeps what the search learnt)."""
    got = searches(name, build)
    for who, (prog, res) in got.items():
        assert res.exhaustive, (who, res.coverage)
        assert keys(res) == right, who
        for f in res.findings:
            rr = replay(prog, f.schedule)
            assert rr.find(f.key) is not None, (who, f.key, rr.message)
    return got


def reference(name: str, build: Build) -> list[tuple[str, str]]:
    """What brute force finds with every stable read a step (no pin reduction at all)."""
    return keys(explore_brute(Program(f"{name}/fine", build, reduce=False), Budget(),
                              stop_first=False))


# ---------------------------------------------------------------- 6: finished pinners
def finished_pin_write() -> Instance:
    a, b, x = Obj("a"), Obj("b"), Obj("x")
    x.pins = ("t0",)  # t0 pins x from the start and never drops the pin

    def t0() -> None:
        a.v = 1      # step 1; the read under t0's own pin joins it
        r = x.s
        _ = b.v      # step 2: t0 finishes after it
        if r == 1:
            fail("saw-1", "t0 read x.s == 1")

    def t1() -> None:
        if a.v == 1:
            x.s = 1  # while t0 pins x, live or finished

    return Instance(threads={"t0": t0, "t1": t1})


def finished_pin_free() -> Instance:
    x0, x1 = Obj("x0"), Obj("x1")
    x1.pins = ("t1",)

    def t1() -> None:
        _ = x1.s                                # in the initial run, under t1's pin
        atomic(x0, "pins", lambda s: (s, None))  # t1's only step

    def t2() -> None:
        free(x1, "t2")                          # while t1 pins x1

    return Instance(threads={"t1": t1, "t2": t2})


@pytest.mark.parametrize(("name", "build", "right"), [
    ("finished-pin-1", finished_pin_write, [("assertion", "saw-1")]),
    ("finished-pin-2", finished_pin_free, [("use-after-free", "use-after-free")]),
])
def test_repro_6_a_write_under_a_finished_threads_pin_promotes(
        name: str, build: Build, right: list[tuple[str, str]]) -> None:
    assert reference(name, build) == right
    got = agree(name, build, right)
    prog, res = got["dpor cached"]
    assert "Obj.s" in prog.knowledge.steps() and res.stats.rounds >= 2


# ---------------------------------------------------------------- 7 and 8: false races
def hand_off_through_free() -> Instance:
    d, gone = Data("d"), Data("gone")

    def freer() -> None:
        d.p = 1                  # a plain write ...
        free(gone, "freer")      # ... published by the free

    def waiter() -> None:
        wait_until(lambda: is_freed(gone), "gone freed")
        _ = d.p                  # only ever after the free, so after the write

    return Instance(threads={"freer": freer, "waiter": waiter})


class Pinned(Shared):
    pins = Field(())
    s = Stable(0, pinned=lambda o, who: who in o.pins)


def hand_off_through_stable() -> Instance:
    d, o = Data("d"), Pinned("o")

    def writer() -> None:
        _ = d.v
        d.p = 1                  # a plain write ...
        o.s = 1                  # ... published by a marked write of o.s (no pin held)

    def reader() -> None:
        atomic(o, "pins", lambda s: (tuple(sorted({*s, "reader"})), None))  # own pin
        if o.s == 1:             # under the reader's pin: joins the step
            _ = d.p              # reached only after o.s = 1, so after d.p = 1

    return Instance(threads={"writer": writer, "reader": reader})


@pytest.mark.parametrize(("name", "build"), [
    ("hand-off-through-free", hand_off_through_free),
    ("hand-off-through-stable", hand_off_through_stable),
])
def test_repros_7_8_a_hand_off_through_a_free_or_a_stable_read_is_no_race(
        name: str, build: Build) -> None:
    """The read of d.p always follows the write (the definition: no interleaving puts
    them side by side), so no search may report a data race."""
    agree(name, build, [])


# ---------------------------------------------------------------- 9: the coordinator
def coordinator_stable_promotion() -> Instance:
    x0, x1 = Obj("x0"), Obj("x1")
    x0.pins = ("t1",)
    lock = Lock("L0")

    def t0() -> None:
        atomic(x1, "pins", lambda s: (tuple(sorted({*s, "t0"})), None))
        _ = x1.s                 # under t0's own pin: joins the step
        x0.s = 0                 # while t1 pins x0: promotes Obj.s in the first steps

    def t1() -> None:
        lock.acquire()
        _ = x0.s
        lock.release()

    return Instance(threads={"t0": t0, "t1": t1})


class GObj(Shared):
    v = Field(0)
    g = Guarded(0, by="lk")

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.lk = Lock(f"{name}.lk")


def coordinator_free_promotion() -> Instance:
    x0, x1 = GObj("x0"), GObj("x1")
    lock = Lock("L0")

    def t0() -> None:
        x0.lk.acquire()
        atomic(x0, "v", lambda o: (o + 1, o))
        _ = x0.g                 # rides along until GObj.~free is promoted
        x0.lk.release()

    def t1() -> None:
        free(x1, "t1")           # promotes GObj.~free in the first steps
        lock.acquire()
        lock.acquire()           # a self-deadlock: a hang to report

    return Instance(threads={"t0": t0, "t1": t1})


@pytest.mark.parametrize(("name", "build", "right"), [
    ("coordinator-stable", coordinator_stable_promotion, []),
    ("coordinator-free", coordinator_free_promotion, [("hang", "hang")]),
])
def test_repro_9_a_promotion_by_the_coordinator_restarts_the_search(
        name: str, build: Build, right: list[tuple[str, str]]) -> None:
    assert reference(name, build) == right
    got = agree(name, build, right)
    for who in ("2 simulated workers, depth 1", "2 simulated workers, depth 2", "--jobs 2"):
        assert got[who][1].stats.rounds >= 2, who  # the coordinator's step restarted it


# ---------------------------------------------------------------- 10: objects made by threads
class Var(Shared):
    v: Field[Any] = Field(0)


def alloc_mid_step() -> Instance:
    x = Var("x")

    def t0() -> None:
        _ = x.v                  # a step: checkpoints are on from here
        Var("fresh")             # a shared object made by the thread, mid-step

    return Instance(threads={"t0": t0})


def unlock_then_alloc() -> Instance:
    lock = Lock("L")
    ptr = Var("ptr")

    def t0() -> None:
        lock.release()           # not held: a lock-balance finding

    def t1() -> None:
        lock.acquire()
        o = Var("fresh")         # made after the search went back to the root (t0 stale)
        o.v = 1
        ptr.v = o
        lock.release()

    return Instance(threads={"t0": t0, "t1": t1})


def publish_and_use() -> Instance:
    ptr = Var("ptr")

    def maker() -> None:
        o = Var("made")
        o.v = 1
        ptr.v = o                # published: the other thread may use it, then it is freed
        free(o, "maker")

    def user() -> None:
        o = ptr.v
        if o != 0:
            _ = o.v              # a use after free when the free came first

    return Instance(threads={"maker": maker, "user": user})


@pytest.mark.parametrize(("name", "build", "right"), [
    ("alloc-mid-step", alloc_mid_step, []),
    ("unlock-then-alloc", unlock_then_alloc, [("assertion", "lock-balance")]),
    ("publish-and-use", publish_and_use, [("use-after-free", "use-after-free")]),
])
def test_repro_10_threads_that_create_objects(
        name: str, build: Build, right: list[tuple[str, str]]) -> None:
    assert keys(explore_brute(Program(name, build), Budget(), stop_first=False)) == right
    got = agree(name, build, right)
    # learnt: the search ran again without checkpoints
    assert ALLOCATES in got["dpor cached"][0].knowledge


# ---------------------------------------------------------------- 11: a pin released by another
def pin_released_by_another() -> Instance:
    a, b, o = Obj("a"), Obj("b"), Obj("o")
    o.pins = ("t0",)

    def t0() -> None:
        a.v = 1                  # X; the read under t0's pin joins it ...
        r = o.s                  # ... but in a finer execution it may come later
        _ = b.v
        if r == 1:
            fail("saw-1", "t0 read o.s == 1")

    def t1() -> None:
        if a.v == 1:
            o.pins = ()          # releases t0's pin (not t0's own step)
            o.s = 1              # no pin left to announce the write

    return Instance(threads={"t0": t0, "t1": t1})


def test_repro_11_a_pin_released_by_another_thread_promotes() -> None:
    right = [("assertion", "saw-1")]
    assert reference("pin-released", pin_released_by_another) == right
    got = agree("pin-released", pin_released_by_another, right)
    assert "Obj.s" in got["dpor cached"][0].knowledge.steps()


def test_a_pin_released_by_its_holder_promotes_nothing() -> None:
    """The holder dropping its own pin and another thread then writing is what the
    declaration allows: no promotion, and the reduced search agrees with the fine one."""

    def build() -> Instance:
        a, o = Obj("a"), Obj("o")
        o.pins = ("t0",)

        def t0() -> None:
            a.v = 1
            r = o.s              # joined under t0's pin
            o.pins = ()          # t0 releases its own pin
            if r == 1:
                fail("saw-1", "t0 read o.s == 1")

        def t1() -> None:
            wait_until(lambda: o.pins == () and a.v == 1, "t0 released o")
            o.s = 1              # always after t0's read

        return Instance(threads={"t0": t0, "t1": t1})

    assert reference("own-release", build) == []
    got = agree("own-release", build, [])
    # learnt that Obj.s is written, and nothing promoted: the read stays joined
    prog = got["dpor cached"][0]
    assert prog.knowledge.steps() == frozenset() and prog.knowledge.all() == {"Obj.s~written"}
