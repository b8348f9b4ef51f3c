"""Small concurrent programs used by the engine tests and the benchmark.

``random_program`` turns a plain-data description (drawn by Hypothesis) into a Program:
threads made of reads, writes, atomic increments, critical sections under locks, waits on
a variable's value, and local assertions.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore import (
    Check,
    Field,
    Ghost,
    Instance,
    Lock,
    Program,
    Shared,
    atomic,
    fail,
    free,
    wait_until,
)


class Var(Shared):
    """A shared integer variable."""

    v = Field(0)


class Note(Shared):
    """Ghost bookkeeping: which thread wrote last (updates do not commute)."""

    last = Ghost(-1)


class Obj(Shared):
    """A refcounted object."""

    refcount = Field(1)
    data = Field(0)


def lost_update() -> Program:
    """Two threads increment a counter non-atomically: one update can be lost."""

    def build() -> Instance:
        c = Var("counter")

        def inc() -> None:
            x = c.v
            c.v = x + 1

        return Instance(
            threads={"t0": inc, "t1": inc},
            final_checks=[Check("lost-update", lambda: None if c.v == 2 else f"counter = {c.v}")],
        )

    return Program("lost-update", build)


def atomic_counter() -> Program:
    """The same with an atomic increment: must pass."""

    def build() -> Instance:
        c = Var("counter")

        def inc() -> None:
            atomic(c, "v", lambda old: (old + 1, None))

        return Instance(
            threads={"t0": inc, "t1": inc},
            final_checks=[Check("lost-update", lambda: None if c.v == 2 else f"counter = {c.v}")],
        )

    return Program("atomic-counter", build)


def abba(ordered: bool = False) -> Program:
    """Two threads take two locks in opposite orders (or the same order when ``ordered``)."""

    def build() -> Instance:
        a, b = Lock("A"), Lock("B")

        def t0() -> None:
            a.acquire()
            b.acquire()
            b.release()
            a.release()

        def t1() -> None:
            first, second = (a, b) if ordered else (b, a)
            first.acquire()
            second.acquire()
            second.release()
            first.release()

        return Instance(threads={"t0": t0, "t1": t1})

    return Program("abba-ordered" if ordered else "abba", build)


def drain_hang(user_puts: bool = False) -> Program:
    """A teardown kills an object and waits for its refcount to drain; a user never puts."""

    def build() -> Instance:
        obj = Obj("obj")

        def user() -> None:
            # get_page_unless_zero: take a reference only while the object is live
            if atomic(obj, "refcount", lambda r: (r + 1, True) if r else (r, False)):
                _ = obj.data
                if user_puts:
                    atomic(obj, "refcount", lambda r: (r - 1, None))   # put

        def teardown() -> None:
            atomic(obj, "refcount", lambda r: (r - 1, None))   # drop the initial reference
            wait_until(lambda: obj.refcount == 0, "obj refcount to drain",
                       prop="teardown-terminates")

        return Instance(threads={"user": user, "teardown": teardown})

    return Program("drain-hang" if not user_puts else "drain-ok", build)


def use_after_free(checked: bool = False) -> Program:
    """A reader uses an object another thread frees (unless it checks a live flag under a
    lock that the freer also takes)."""

    def build() -> Instance:
        obj = Obj("obj")
        live = Var("live")
        live.v = 1
        lock = Lock("lock")

        def reader() -> None:
            if checked:
                lock.acquire()
                if live.v:
                    _ = obj.data
                lock.release()
            else:
                if live.v:
                    _ = obj.data

        def freer() -> None:
            if checked:
                lock.acquire()
            live.v = 0
            free(obj, "kfree by freer")
            if checked:
                lock.release()

        return Instance(threads={"reader": reader, "freer": freer})

    return Program("uaf-checked" if checked else "uaf", build)


def independent(nthreads: int = 3, steps: int = 4) -> Program:
    """Threads that mostly touch their own variables, and meet once on a shared one."""

    def build() -> Instance:
        own = [Var(f"own{i}") for i in range(nthreads)]
        common = Var("common")

        def body(i: int) -> Any:
            def run() -> None:
                for _ in range(steps):
                    own[i].v = own[i].v + 1
                atomic(common, "v", lambda x: (x + 1, None))

            return run

        return Instance(
            threads={f"t{i}": body(i) for i in range(nthreads)},
            final_checks=[Check("sum", lambda: None if common.v == nthreads else "lost")],
        )

    return Program(f"independent-{nthreads}x{steps}", build)


# ---------------------------------------------------------------- random programs
# An op is a tuple:
#   ("r", var)                 local = var.v
#   ("w", var, c)              var.v = local + c
#   ("inc", var)               atomic var.v += 1
#   ("cs", lock, [ops])        lock; ops; unlock
#   ("wait", var, value)       wait_until var.v == value
#   ("assert", c)              fail if local == c
#   ("ghost", c)               ghost note.last = c (not a step; order matters)
# ``inv`` = (a, b): invariant "not (x0 == a and x1 == b)"; ``ghost_final`` = c: final check
# "note.last != c".


def random_program(
    spec: list[list[tuple[Any, ...]]],
    nvars: int,
    nlocks: int,
    inv: tuple[int, int] | None = None,
    ghost_final: int | None = None,
) -> Program:
    """A Program from a plain-data description (see the op list above)."""

    def build() -> Instance:
        vs = [Var(f"x{i}") for i in range(nvars)]
        ls = [Lock(f"L{i}") for i in range(nlocks)]
        note = Note("note")
        invariants = []
        if inv is not None:
            a, b = inv
            invariants.append(Check("pair", lambda: "x0, x1 = forbidden pair"
                                    if (vs[0].v, vs[1].v) == (a, b) else None))
        finals = []
        if ghost_final is not None:
            finals.append(Check("ghost", lambda: "note.last = forbidden"
                                if note.last == ghost_final else None))

        def run_ops(ops: list[tuple[Any, ...]], local: list[int]) -> None:
            for op in ops:
                kind = op[0]
                if kind == "r":
                    local[0] = vs[op[1]].v
                elif kind == "w":
                    vs[op[1]].v = local[0] + op[2]
                elif kind == "inc":
                    atomic(vs[op[1]], "v", lambda x: (x + 1, None))
                elif kind == "cs":
                    ls[op[1]].acquire()
                    run_ops(op[2], local)
                    ls[op[1]].release()
                elif kind == "wait":
                    var, val = vs[op[1]], op[2]
                    wait_until(lambda var=var, val=val: var.v == val, f"x{op[1]} == {val}")
                elif kind == "assert" and local[0] == op[1]:
                    fail("local-assert", f"local == {op[1]}")
                elif kind == "ghost":
                    note.last = op[1]

        def thread(ops: list[tuple[Any, ...]]) -> Any:
            return lambda: run_ops(ops, [0])

        return Instance(threads={f"t{i}": thread(ops) for i, ops in enumerate(spec)},
                        invariants=invariants, final_checks=finals)

    return Program("random", build)
