"""RCU (pfnlab.mm.rcu): what a grace period waits for, and when callbacks run."""

from __future__ import annotations

from collections.abc import Callable

from pfnlab.explore import Check, Field, Instance, Program, Shared, free, is_freed, set_context
from pfnlab.explore.search import explore
from pfnlab.kernel.world import World
from pfnlab.mm import (
    Host,
    call_rcu,
    kfree,
    kfree_rcu,
    rcu_callback_thread,
    rcu_read_lock,
    rcu_read_unlock,
    synchronize_rcu,
)


class Var(Shared):
    v = Field(0)


class Box(Shared):
    """An RCU-protected pointer (``p``) to an object with a value (``val``)."""

    p: Field[Shared | None] = Field(None)
    val = Field(7)


def _program(name: str, threads: Callable[[], Instance], reduce: bool = True) -> Program:
    def build() -> Instance:
        set_context(World(host=Host()))
        return threads()

    return Program(name, build, reduce=reduce)


def _grace_period(reader_locks: bool, reduce: bool = True) -> Program:
    """Reader B notes whether its section began before the updater's synchronize_rcu()
    call (2) or after it (1) while inside, 0 outside."""

    def threads() -> Instance:
        called, returned, b = Var("called"), Var("returned"), Var("b")

        def reader() -> None:
            if reader_locks:
                rcu_read_lock()
            b.v = 2 if called.v == 0 else 1
            b.v = 0
            if reader_locks:
                rcu_read_unlock()

        def updater() -> None:
            called.v = 1
            synchronize_rcu()
            returned.v = 1

        def waited() -> str | None:
            if returned.v and b.v == 2:
                return "synchronize_rcu returned inside a section begun before the call"
            return None

        def later_reader() -> str | None:
            if returned.v and b.v == 1:
                return "synchronize_rcu returned inside a section begun after the call"
            return None

        return Instance(threads={"reader": reader, "updater": updater},
                        invariants=[Check("waited", waited, "grace-period")],
                        goals=[Check("later-reader-not-waited-for", later_reader)])

    return _program("grace-period", threads, reduce)


def test_synchronize_rcu_waits_for_readers_begun_before_it_not_after() -> None:
    res = explore(_grace_period(reader_locks=True), stop_first=False)
    assert res.ok and res.exhaustive, [f.message for f in res.findings]
    assert res.goals_reached == ["later-reader-not-waited-for"]


def test_a_reader_outside_any_section_is_not_waited_for() -> None:
    """The control: without rcu_read_lock() the invariant above is violated."""
    res = explore(_grace_period(reader_locks=False))
    (f,) = res.findings
    assert f.prop == "grace-period"
    assert "begun before the call" in f.message


def _unpublish_then_free(how: str, *, reader_locks: bool = True, reduce: bool = True
                         ) -> Program:
    """The updater unpublishes ``box.p`` and frees the object (``kfree_rcu``, or
    ``synchronize_rcu`` + ``kfree``, or ``kfree`` at once); the reader dereferences
    the pointer inside a read-side section."""

    def threads() -> Instance:
        box, obj = Box("box"), Box("obj")
        box.p = obj

        def reader() -> None:
            if reader_locks:
                rcu_read_lock()
            p = box.p
            if p is not None:
                _ = p.val
            if reader_locks:
                rcu_read_unlock()

        def updater() -> None:
            old = box.p
            box.p = None
            assert old is not None
            if how == "kfree_rcu":
                kfree_rcu(old)
            elif how == "synchronize_rcu":
                synchronize_rcu()
                kfree(old)
            else:
                kfree(old)

        freed = Check("obj-freed", lambda: "freed" if is_freed(obj) else None)
        return Instance(threads={"reader": reader, "updater": updater,
                                 "rcu": rcu_callback_thread}, goals=[freed])

    return _program(f"unpublish-{how}", threads, reduce)


def test_kfree_rcu_frees_after_the_readers_that_could_see_the_object() -> None:
    for how in ("kfree_rcu", "synchronize_rcu"):
        res = explore(_unpublish_then_free(how), stop_first=False)
        assert res.ok and res.exhaustive, (how, [f.message for f in res.findings])
        assert res.goals_reached == ["obj-freed"], how


def test_a_free_without_a_grace_period_is_a_use_after_free() -> None:
    res = explore(_unpublish_then_free("kfree"))
    (f,) = res.findings
    assert f.kind == "use-after-free"
    assert "reader" in f.message and "obj" in f.message


def test_kfree_rcu_does_not_protect_a_reader_outside_a_section() -> None:
    res = explore(_unpublish_then_free("kfree_rcu", reader_locks=False))
    (f,) = res.findings
    assert f.kind == "use-after-free"


def test_call_rcu_runs_its_callback_after_the_grace_period() -> None:
    """A callback that marks the object dead never runs while a reader that found the
    object is in its section; it does run in some execution."""

    def threads() -> Instance:
        box, obj, dead, seen_dead = Box("box"), Box("obj"), Var("dead"), Var("seen")
        box.p = obj

        def mark_dead(head: Shared) -> None:
            dead.v = 1

        def reader() -> None:
            rcu_read_lock()
            if box.p is not None:
                seen_dead.v = dead.v
            rcu_read_unlock()

        def updater() -> None:
            box.p = None
            call_rcu(obj, mark_dead)

        ran = Check("callback-ran", lambda: "ran" if dead.v else None)
        early = Check("early", lambda: "callback ran under a reader" if seen_dead.v else None,
                      "grace-period")
        return Instance(threads={"reader": reader, "updater": updater,
                                 "rcu": rcu_callback_thread},
                        invariants=[early], goals=[ran])

    res = explore(_program("call-rcu", threads), stop_first=False)
    assert res.ok and res.exhaustive, [f.message for f in res.findings]
    assert res.goals_reached == ["callback-ran"]


def test_nested_sections_protect_until_the_outermost_unlock() -> None:
    def threads() -> Instance:
        box, obj = Box("box"), Box("obj")
        box.p = obj

        def reader() -> None:
            rcu_read_lock()
            p = box.p
            rcu_read_lock()
            rcu_read_unlock()
            if p is not None:
                _ = p.val
            rcu_read_unlock()

        def updater() -> None:
            box.p = None
            synchronize_rcu()
            free(obj)

        return Instance(threads={"reader": reader, "updater": updater})

    res = explore(_program("nested", threads), stop_first=False)
    assert res.ok and res.exhaustive, [f.message for f in res.findings]


def test_an_unlock_without_a_lock_is_a_lock_balance_finding() -> None:
    def threads() -> Instance:
        return Instance(threads={"reader": rcu_read_unlock})

    (f,) = explore(_program("unbalanced", threads)).findings
    assert f.prop == "lock-balance"


def test_the_verdicts_are_the_same_without_movers_and_summaries() -> None:
    """Read sections are movers and kernel functions summarised calls: with neither
    (every operation its own step) each program above gives the same verdict."""
    for reduce in (True, False):
        res = explore(_grace_period(True, reduce), stop_first=False)
        assert res.ok and res.goals_reached == ["later-reader-not-waited-for"], reduce
        res = explore(_unpublish_then_free("kfree_rcu", reduce=reduce), stop_first=False)
        assert res.ok and res.goals_reached == ["obj-freed"], reduce
        res = explore(_unpublish_then_free("kfree", reduce=reduce))
        assert [f.kind for f in res.findings] == ["use-after-free"], reduce
