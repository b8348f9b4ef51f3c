"""Programs drawn to break one reduction's assumption each (issue 25), as plain data.

A :class:`Spec` is rendered as pfnlab source (:func:`source`, using only the public API) for
the engine, and run as it is by the independent reference interpreter
(``tests/engine/reference.py``), which shares no code with the engine. Each *profile* draws
its ops with the weights that aim at one assumption:

- ``stable``: reads of Stable fields under pins (joined to their step), pins taken and
  released by their holder *and by other threads*, pinning threads that finish holding a
  pin, writes of pinned and ``__ro_after_init`` fields, frees of pinned objects
  (docs/reductions.md section 11);
- ``handoff``: Plain fields handed from one thread to another through a free and a wait on
  ``is_freed``, through a marked flag, through a Stable read under the reader's pin, and
  unordered ones (section 3, the race detector);
- ``alloc``: objects created by threads, published through a marked field, used and freed
  through it (sections 10 and 13: checkpoints and the step memo);
- ``locks``: locks released without being taken or by another thread, SRCU sections left
  without being entered, guarded fields accessed with and without their lock, objects with
  guarded fields freed (sections 5 and 5a; issue 25 item 4);
- ``promote``: stable writes under pins and frees of guarded objects at every depth of an
  execution, for the parallel search's coordinator and its tasks (section 12).

The shared state: objects ``o0``, ``o1``, ... of class ``Obj`` with a marked field ``v``, a
``Plain`` field ``p`` (only in programs that use it: it turns the race detector on, and
checkpoints and the step memo off), a Stable field ``s`` pinned by ``who in o.pins``, an
``__ro_after_init`` Stable field ``t``, the marked ``pins``, Guarded fields ``g`` (by the
object's lock ``lk``) and ``q`` (the same, ``lockless_reads=True``); global locks ``L0``,
``L1`` (``L1`` not a mover); one Srcu ``S``. Threads ``t0``, ``t1``, ... each have one
register ``r`` (initially 0). Ops:

  ("rd", o, f)           r = o.f            f in v p s t g q
  ("wr", o, f, c)        o.f = c            f in v p s t g q
  ("inc", o, f)          atomic o.f += 1    f in v p s g q
  ("pin", o, who)        add thread ``who`` to o.pins (atomic)
  ("unpin", o, who)      remove it
  ("lk", o), ("ulk", o)  o.lk.acquire() / release()
  ("acq", l), ("rel", l) Ll.acquire() / release()
  ("srl",), ("sru",)     S.read_lock() / read_unlock()
  ("sync",)              S.synchronize()
  ("wait", atom)         wait_until(atom): ("eq", o, f, c) o.f == c (f in v p), ("freed", o)
  ("free", o)            free(o)
  ("alloc", o, k)        n = Obj("a<thread>_<k>"); n.v = 1; o.v = n
  ("deref", o, f)        x = o.v; if x is an object: r = x.f
  ("freeref", o)         x = o.v; if x is an object: free(x)
  ("fail", c)            if r == c: fail("bad", ...)
  ("if", c, ops)         if r == c: ops
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import factorial
from typing import Any

Op = tuple[Any, ...]
Pick = Callable[[int, int], int]

PROFILES = ("stable", "handoff", "alloc", "locks", "promote")

#: the fields each op may name
READABLE = ("v", "p", "s", "t", "g", "q")
INCABLE = ("v", "p", "s", "g", "q")


@dataclass(frozen=True)
class Spec:
    """A program: objects, their initial pins, threads."""

    objects: int
    pins: tuple[tuple[str, ...], ...]        # per object: who pins it at set-up
    threads: tuple[tuple[Op, ...], ...]
    profile: str = ""

    @property
    def names(self) -> list[str]:
        return [f"t{i}" for i in range(len(self.threads))]


# ------------------------------------------------------------------ drawing
#: per profile: op kind -> weight
WEIGHTS: dict[str, dict[str, int]] = {
    "stable": {"check_s": 6, "check_t": 2, "rd_s": 1, "wr_s": 4, "wr_t": 1, "pin": 3,
               "unpin": 2, "pin_other": 2, "unpin_other": 3, "free": 2, "rd_v": 2, "wr_v": 3,
               "wait_v": 2, "if": 1},
    "handoff": {"rd_p": 4, "wr_p": 4, "wr_v": 3, "rd_v": 1, "wait_v": 3, "wait_freed": 3,
                "free": 3, "pin": 2, "rd_s": 2, "wr_s": 2, "inc_p": 1, "lock": 1,
                "fail": 2},
    "alloc": {"alloc": 5, "deref": 5, "freeref": 3, "rd_v": 2, "wr_v": 1, "lock": 2,
              "wait_v": 1, "fail": 2, "if": 1},
    "locks": {"acq": 3, "rel": 4, "lk": 3, "ulk": 3, "srl": 2, "sru": 3, "sync": 1,
              "rd_g": 3, "wr_g": 3, "rd_q": 2, "wr_q": 2, "inc_g": 1, "free": 2,
              "wait_v": 1, "wr_v": 2, "fail": 1},
    "promote": {"check_s": 4, "wr_s": 3, "pin": 3, "unpin": 2, "lk": 2, "ulk": 2,
                "rd_g": 2, "wr_g": 2, "free": 2, "rd_v": 3, "wr_v": 3, "inc_v": 2, "fail": 1},
}

#: scheduling points an op may take, for bounding brute force's work
_STEPS = {"rd": 1, "wr": 1, "inc": 1, "pin": 1, "unpin": 1, "lk": 2, "ulk": 1, "acq": 2,
          "rel": 1, "srl": 1, "sru": 1, "sync": 2, "wait": 2, "free": 1, "alloc": 2,
          "deref": 2, "freeref": 2, "fail": 0}


def steps(op: Op) -> int:
    """An upper estimate of the scheduling points ``op`` takes (a failed attempt is one)."""
    if op[0] == "if":
        return sum(steps(o) for o in op[2])
    return _STEPS[op[0]]


def interleavings(weights: list[int]) -> int:
    """How many interleavings threads of ``weights`` steps have (a multinomial)."""
    n = factorial(sum(weights))
    for w in weights:
        n //= factorial(w)
    return n


class _Draw:
    def __init__(self, pick: Pick, profile: str, nobj: int, nthreads: int) -> None:
        self.pick = pick
        self.profile = profile
        self.nobj = nobj
        self.nthreads = nthreads
        self.kinds = [k for k, w in WEIGHTS[profile].items() for _ in range(w)]
        self.allocs = 0

    def choice(self, items: Any) -> Any:
        return items[self.pick(0, len(items) - 1)]

    def obj(self) -> str:
        return f"o{self.pick(0, self.nobj - 1)}"

    def other(self, me: int) -> str:
        return f"t{self.choice([t for t in range(self.nthreads) if t != me] or [me])}"

    def ops(self, me: int, depth: int) -> list[Op]:
        """One drawn op, or a read and a check of what it read (``check_s``: a stable
        read that a write overtaking it would change)."""
        kind = self.choice(self.kinds)
        if kind.startswith("check_"):
            return [("rd", self.obj(), kind[-1]), ("fail", self.pick(1, 2))]
        return [self.op(me, depth, kind)]

    def op(self, me: int, depth: int, kind: str) -> Op:
        if kind == "if" and depth > 0:
            kind = "fail"
        if kind.startswith(("rd_", "wr_", "inc_")):
            verb, f = kind.split("_")
            if verb == "wr":  # stable fields: a value the initial 0 is not
                return ("wr", self.obj(), f, self.pick(1 if f in "st" else 0, 2))
            return (verb, self.obj(), f)
        if kind in ("pin", "unpin"):
            return (kind, self.obj(), f"t{me}")
        if kind in ("pin_other", "unpin_other"):
            return (kind.split("_")[0], self.obj(), self.other(me))
        if kind in ("lk", "ulk", "free", "freeref"):
            return (kind, self.obj())
        if kind in ("acq", "rel"):
            return (kind, self.pick(0, 1))
        if kind == "lock":  # a critical section of L0 around one marked write
            return ("if", 0, (("acq", 0), ("wr", self.obj(), "v", self.pick(1, 2)),
                              ("rel", 0)))
        if kind in ("srl", "sru", "sync"):
            return (kind,)
        if kind == "wait_v":
            return ("wait", ("eq", self.obj(), "v", self.pick(0, 2)))
        if kind == "wait_freed":
            return ("wait", ("freed", self.obj()))
        if kind == "alloc":
            self.allocs += 1
            return ("alloc", self.obj(), self.allocs)
        if kind == "deref":
            return ("deref", self.obj(), self.choice(("v", "s")))
        if kind == "fail":
            return ("fail", self.pick(1, 2))
        assert kind == "if", kind
        return ("if", self.pick(0, 2), tuple(o for _ in range(self.pick(1, 2))
                                             for o in self.ops(me, depth + 1)))


def draw(pick: Pick, profile: str, *, max_interleavings: int = 2000) -> Spec:
    """A program of ``profile`` drawn with ``pick(lo, hi)`` (an integer in [lo, hi])."""
    nthreads = pick(2, 3)
    nobj = pick(1, 2)
    d = _Draw(pick, profile, nobj, nthreads)
    pins = tuple(tuple(f"t{t}" for t in range(nthreads) if pick(0, 3) == 0)
                 for _ in range(nobj))
    threads = [[o for _ in range(pick(1, 4)) for o in d.ops(t, 0)] for t in range(nthreads)]
    if profile == "alloc":  # mostly after a first step, when checkpoints are already on
        for ops in threads:
            if ops[0][0] == "alloc" and pick(0, 3):
                ops.insert(0, ("rd", ops[0][1], "v"))
    while True:  # keep brute force fast: drop ops from the end of the heaviest thread
        weights = [sum(steps(o) for o in ops) for ops in threads]
        if interleavings(weights) <= max_interleavings:
            break
        heaviest = max(range(nthreads), key=lambda t: (weights[t], t))
        threads[heaviest].pop()
    threads = [ops or [("rd", "o0", "v")] for ops in threads]
    return Spec(nobj, pins, tuple(tuple(ops) for ops in threads), profile)


# ------------------------------------------------------------------ rendering
_HEADER = '''\
from pfnlab.explore import (
    Field, Guarded, Instance, Lock, Plain, Program, Shared, Srcu, Stable, atomic, fail,
    free, is_freed, wait_until,
)


class Obj(Shared):
    v = Field(0)
{plain}    pins = Field(())
    s = Stable(0, pinned=lambda o, who: who in o.pins)
    t = Stable(0)
    g = Guarded(0, by="lk")
    q = Guarded(0, by="lk", lockless_reads=True)

    def __init__(self, name):
        super().__init__(name)
        self.lk = Lock(name + ".lk")


def _add(who):
    return lambda s: (tuple(sorted({*s, who})), None)


def _remove(who):
    return lambda s: (tuple(x for x in s if x != who), None)


def build():
'''


def _ops(ops: tuple[Op, ...], me: str, indent: str) -> list[str]:
    out: list[str] = []
    for op in ops:
        k = op[0]
        if k == "rd":
            out.append(f"r = {op[1]}.{op[2]}")
        elif k == "wr":
            out.append(f"{op[1]}.{op[2]} = {op[3]}")
        elif k == "inc":
            out.append(f"atomic({op[1]}, {op[2]!r}, lambda x: (x + 1, None))")
        elif k == "pin":
            out.append(f"atomic({op[1]}, 'pins', _add({op[2]!r}))")
        elif k == "unpin":
            out.append(f"atomic({op[1]}, 'pins', _remove({op[2]!r}))")
        elif k == "lk":
            out.append(f"{op[1]}.lk.acquire()")
        elif k == "ulk":
            out.append(f"{op[1]}.lk.release()")
        elif k == "acq":
            out.append(f"L{op[1]}.acquire()")
        elif k == "rel":
            out.append(f"L{op[1]}.release()")
        elif k == "srl":
            out.append("S.read_lock()")
        elif k == "sru":
            out.append("S.read_unlock()")
        elif k == "sync":
            out.append("S.synchronize()")
        elif k == "wait":
            a = op[1]
            cond = f"{a[1]}.{a[2]} == {a[3]}" if a[0] == "eq" else f"is_freed({a[1]})"
            out.append(f"wait_until(lambda: {cond}, {cond!r})")
        elif k == "free":
            out.append(f"free({op[1]}, 'by {me}')")
        elif k == "alloc":
            out += [f"n = Obj('a{me[1:]}_{op[2]}')", "n.v = 1", f"{op[1]}.v = n"]
        elif k == "deref":
            out += [f"x = {op[1]}.v", "if isinstance(x, Obj):", f"    r = x.{op[2]}"]
        elif k == "freeref":
            out += [f"x = {op[1]}.v", "if isinstance(x, Obj):", f"    free(x, 'by {me}')"]
        elif k == "fail":
            out += [f"if r == {op[1]}:", f"    fail('bad', '{me}: r == {op[1]}')"]
        else:
            assert k == "if", op
            out.append(f"if r == {op[1]}:")
            out += _ops(op[2], me, "    ") or ["    pass"]
    return [indent + line for line in out]


def uses_plain(spec: Spec) -> bool:
    """Whether ``spec`` touches the Plain field ``p`` (only then has ``Obj`` one: a Plain
    field turns the race detector on, and checkpoints and the step memo off)."""
    return "'p'" in repr(spec.threads)


def source(spec: Spec, name: str = "targeted") -> str:
    """``spec`` as a standalone module defining ``build()`` and ``PROGRAM``."""
    lines = [f"o{i} = Obj('o{i}')" for i in range(spec.objects)]
    lines += [f"o{i}.pins = {pins!r}" for i, pins in enumerate(spec.pins) if pins]
    lines += ["L0 = Lock('L0')", "L1 = Lock('L1', mover=False)", "S = Srcu('S')"]
    for t, ops in enumerate(spec.threads):
        lines += ["", f"def t{t}():", "    r = 0", *_ops(ops, f"t{t}", "    ")]
    threads = ", ".join(f"'t{t}': t{t}" for t in range(len(spec.threads)))
    lines += ["", f"return Instance(threads={{{threads}}})"]
    body = "\n".join(("    " + line) if line else "" for line in lines)
    header = _HEADER.replace("{plain}", "    p = Plain(0)\n" if uses_plain(spec) else "")
    return f"{header}{body}\n\n\nPROGRAM = Program({name!r}, build)\n"


def program(spec: Spec, name: str = "targeted") -> Any:
    """The pfnlab ``Program`` of ``spec`` (compiled from :func:`source`)."""
    namespace: dict[str, Any] = {"__name__": f"pfnlab_{name}"}
    exec(compile(source(spec, name), f"<{name}>", "exec"), namespace)
    return namespace["PROGRAM"]
