"""Small concurrent programs used by the engine tests and the benchmark.

``random_program`` turns a plain-data description (drawn by Hypothesis) into a Program:
threads made of reads, writes, atomic increments, critical sections under locks, waits on
a variable's value, and local assertions.

``wide_spec`` draws wider ones (up to 4 threads, nested and hand-over-hand locks, waits
over several objects, frees, negative and boolean values, invariants and goals reading
through every accessor, findings mid-thread, threads as lists of operations, Plain fields);
``wide_program`` renders one as Python source and compiles it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import factorial
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


#: the smallest program whose reversal source-DPOR must follow rather than rediscover: t0's
#: wait passes and then writes ghost state, which its blocked attempt did not show
#: (test_differential's pinned example)
HINT_BASE: tuple[tuple[tuple[Any, ...], ...], ...] = (
    (("wait", 1, 0), ("ghost", 1)), (("w", 0, 0), ("inc", 1)), (("inc", 0), ("ghost", 0)))

def op_weight(op: tuple[Any, ...]) -> int:
    """Scheduling steps of an op of :func:`random_program` (a failed attempt counts one)."""
    if op[0] == "cs":
        return 3 + sum(op_weight(o) for o in op[2])
    return {"r": 1, "w": 1, "inc": 1, "wait": 2, "assert": 0, "ghost": 0}[op[0]]


def hint_spec(rng: Any, locks: bool = False) -> tuple[list[list[tuple[Any, ...]]], int | None]:
    """A program around :data:`HINT_BASE` for ``random_program(spec, 3, 1, None,
    ghost_final)``: threads shuffled, one to four ops inserted, removed or added as a thread
    (three variables, so that states converge and caching prunes before the race that needs
    the hint). ``locks``: also a critical section of lock 0 around a random slice of most
    threads, and in half the programs no wait at all (a blocked acquire in its place).
    Returns ``(spec, ghost_final)``; at most 30,000 interleavings.

    Found the hint loss at cache hits (docs/reductions.md section 2): 6 of the first 1,400
    such programs (seed 1) reached fewer final states with caching on."""

    def op() -> tuple[Any, ...]:
        k = rng.choice(["inc", "inc", "w", "r", "ghost", "wait", "inc2"])
        if k == "inc2":
            return ("inc", 2)
        if k == "inc":
            return ("inc", rng.randrange(3))
        if k == "w":
            return ("w", rng.randrange(3), rng.randrange(2))
        if k == "r":
            return ("r", rng.randrange(3))
        if k == "ghost":
            return ("ghost", rng.randrange(3))
        return ("wait", rng.randrange(3), rng.randrange(2))

    while True:
        spec = [list(t) for t in HINT_BASE]
        rng.shuffle(spec)
        for _ in range(rng.randint(1, 4)):
            r = rng.random()
            if r < 0.3 and len(spec) < 4:
                spec.append([op() for _ in range(rng.randint(1, 2))])
            elif r < 0.8:
                t = rng.choice(spec)
                t.insert(rng.randint(0, len(t)), op())
            else:
                t = rng.choice(spec)
                if len(t) > 1:
                    t.pop(rng.randrange(len(t)))
        if locks:
            spec = [_in_section(rng, t) for t in spec]
            if rng.random() < 0.5:
                spec = [[o for o in t if o[0] != "wait"] or [("r", 0)] for t in spec]
        ghost_final = rng.choice([None, 0, 1, 2])
        if interleavings([sum(op_weight(o) for o in t) for t in spec]) <= 30_000:
            return spec, ghost_final


def _in_section(rng: Any, ops: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``ops`` with a random slice under lock 0 (or unchanged, three times in ten)."""
    if rng.random() < 0.3:
        return ops
    i = rng.randrange(len(ops))
    j = rng.randint(i + 1, len(ops))
    return [*ops[:i], ("cs", 0, ops[i:j]), *ops[j:]]


# ---------------------------------------------------------------- wide random programs
# The widened generator of the differential test and of bench/differential.py. A program is
# drawn as plain data (a WideSpec), rendered as Python source (wide_source) and compiled
# (compile_program), so the program that was checked is exactly the code a disagreement
# prints. Every choice is one call ``pick(lo, hi)`` (an integer in [lo, hi], lo the
# simplest), so Hypothesis (``st.integers``, shrinking towards lo) and ``random.Random``
# drive the same generator.
#
# Ops of a thread (``r`` is the thread's one local register, initially 0):
#   ("r", i)             r = xi.v
#   ("w", i, d)          xi.v = r + d                      (negative values)
#   ("wc", i, c)         xi.v = c                          (c may be negative or a bool)
#   ("wcmp", i, c)       xi.v = r == c                     (a bool)
#   ("inc", i)           atomic xi.v += 1
#   ("xchg", i, c)       r = atomic exchange of xi.v with c
#   ("pr", i)            r = xi.p                          (Plain: no scheduling point;
#   ("pw", i, d)         xi.p = r + d                       unordered accesses: data-race)
#   ("cs", l, ops)       Ll.acquire(); ops; Ll.release()   (nested: lock orders vary)
#   ("acq", l)           Ll.acquire()                      (released by a later rel, or leaked)
#   ("rel", l)           Ll.release() of an earlier acq    (hand-over-hand; lock-balance when
#                                                           the acq was under an if not taken)
#   ("wait", expr)       wait_until(expr)                  (conditions over several objects)
#   ("free", name)       free(name)                        (later accesses: use-after-free)
#   ("fail", c)          if r == c: fail(...)              (a finding mid-thread)
#   ("raise", c)         if r == c: raise ValueError(...)  (an exception mid-thread)
#   ("ghost", c)         note.g = c                        (Ghost, not a step)
#   ("gadd", k)          note.n += k, k >= 1               (Ghost counter: only grows)
#   ("if", c, ops)       if r == c: ops
#   ("next",)            (top level only) the thread's next operation starts here: a thread
#                        with markers is a list of functions, each with its own r = 0
# An expr is (conj, atoms), conj "and" or "or"; an atom reads through one accessor:
#   ("v", i, cmp, c)     xi.v CMP c            plain field read
#   ("p", i, cmp, c)     xi.peek('v') CMP c    Shared.peek
#   ("pl", i, cmp, c)    xi.p CMP c            Plain field (a check reading it makes its
#                                              accesses scheduling points)
#   ("freed", name)      is_freed(name)
#   ("held", l, who)     Ll.held_by() == who   Lock.held_by (who: None or a thread name)
#   ("owner", l, who)    Ll.owner == who       plain read of the lock's field
#   ("g", cmp, c)        note.g CMP c          Ghost field (checks only, never waits)
#   ("n", k)             note.n >= k           Ghost counter (monotone)
#   ("not", atom)
# Invariants and goals are (expr, stable); an invariant fails when its expr holds, a goal is
# reached when it holds, a final check fails when it holds at the end. Only monotone exprs
# (is_freed and note.n >= k atoms under and/or: once true, true for ever) are ever declared
# stable, so a stable declaration is always true (invariants only with
# Shape.stable_invariants).

Pick = Callable[[int, int], int]
Op = tuple[Any, ...]
Expr = tuple[str, tuple[tuple[Any, ...], ...]]

#: constants written to fields and compared against (index 0 is the simplest)
CONSTS: tuple[int | bool, ...] = (0, 1, -1, 2, True, False, -2)
_NONZERO = tuple(c for c in CONSTS if c != 0)
DELTAS = (1, 0, -1, 2, -2)
CMPS = ("==", "<=", ">=", "!=", "is")
# index 0 is what Hypothesis shrinks to; repeated kinds are drawn more often
_KINDS = ("r", "w", "wc", "inc", "cs", "wait", "fail", "xchg", "wcmp", "ghost", "gadd",
          "if", "free", "acq", "raise", "w", "r", "cs", "wait", "inc", "wc", "cs", "rel",
          "next", "pr", "pw")
_ATOMS = ("v", "p", "held", "freed", "owner", "g", "n", "not", "v", "p", "pl")
_STEP_WEIGHT = {"r": 1, "w": 1, "wc": 1, "wcmp": 1, "inc": 1, "xchg": 1, "free": 1,
                "rel": 1, "wait": 2, "acq": 2, "fail": 0, "raise": 0, "ghost": 0, "gadd": 0,
                "next": 0, "pr": 1, "pw": 1}


@dataclass(frozen=True)
class Shape:
    """Bounds of the generated programs."""

    threads: int = 4          # 2..threads threads
    vars: int = 3             # 1..vars shared variables x0, x1, ...
    locks: int = 2            # 0..locks locks L0, L1, ...
    ops: int = 6              # 1..ops top-level ops per thread
    body: int = 2             # 1..body ops in a critical section or an if
    depth: int = 2            # nesting of critical sections and ifs
    checks: int = 2           # 0..checks invariants, goals and final checks (each)
    atoms: int = 3            # 1..atoms atoms per expression
    #: Plain fields (ops pr/pw, atom pl: accesses that are not scheduling points, checked by
    #: the race detector); test_plain_disagreements.py pins the classes they once broke
    plain: bool = True
    #: invariants may be declared stable (goals may always be); a stable invariant's
    #: violation no longer ends its execution, so it cannot hide another finding
    #: (test_differential.py::test_a_stable_invariant_does_not_hide_other_findings)
    stable_invariants: bool = True
    #: bound on the multinomial count of interleavings of the threads' step weights
    #: (see ``weight``): keeps brute force fast. Ops are dropped from the end of the
    #: heaviest thread until the program fits.
    interleavings: int = 3000


WIDE = Shape()


@dataclass(frozen=True)
class WideSpec:
    """A wide random program as plain data (see the op and expr lists above)."""

    threads: tuple[tuple[Op, ...], ...]
    inits: tuple[int | bool, ...]
    nlocks: int
    invariants: tuple[tuple[Expr, bool], ...] = ()
    goals: tuple[tuple[Expr, bool], ...] = ()
    finals: tuple[Expr, ...] = ()

    @property
    def objects(self) -> list[str]:
        """Names of the variables and locks (what free and is_freed take)."""
        return [f"x{i}" for i in range(len(self.inits))] + [f"L{i}" for i in range(self.nlocks)]


def weight(op: Op) -> int:
    """An upper estimate of the scheduling steps ``op`` takes (failed attempts count one)."""
    kind = op[0]
    if kind == "cs":
        return 3 + sum(weight(o) for o in op[2])
    if kind == "if":
        return sum(weight(o) for o in op[2])
    return _STEP_WEIGHT[kind]


def interleavings(weights: list[int]) -> int:
    """How many interleavings threads of ``weights`` steps have (a multinomial)."""
    n = factorial(sum(weights))
    for w in weights:
        n //= factorial(w)
    return n


class _Gen:
    def __init__(self, pick: Pick, shape: Shape) -> None:
        self.pick = pick
        self.shape = shape
        self.nvars = 1
        self.nlocks = 0
        self.nthreads = 2
        self.objects: list[str] = []
        self.leaked: set[int] = set()   # locks the current thread took by acq, not released

    def choice(self, items: tuple[Any, ...] | list[Any]) -> Any:
        return items[self.pick(0, len(items) - 1)]

    def var(self) -> int:
        return self.pick(0, self.nvars - 1)

    def op(self, depth: int, held: tuple[int, ...]) -> Op:
        kind = self.choice(_KINDS)
        free_locks = [i for i in range(self.nlocks) if i not in held and i not in self.leaked]
        if kind in ("cs", "if") and depth >= self.shape.depth:
            kind = "w"
        if kind == "next":
            if depth == 0:
                return ("next",)
            kind = "inc"
        if kind in ("pr", "pw") and not self.shape.plain:
            kind = kind[1]
        if (kind in ("cs", "acq") and not free_locks) or (kind == "rel" and not self.leaked):
            kind = "r"
        if kind in ("r", "pr"):
            return (kind, self.var())
        if kind in ("w", "pw"):
            return (kind, self.var(), self.choice(DELTAS))
        if kind in ("wc", "wcmp", "xchg"):
            return (kind, self.var(), self.choice(CONSTS))
        if kind == "inc":
            return ("inc", self.var())
        if kind == "cs":
            lock = self.choice(free_locks)
            return ("cs", lock, self.body(depth + 1, (*held, lock)))
        if kind == "acq":
            lock = self.choice(free_locks)
            self.leaked.add(lock)
            return ("acq", lock)
        if kind == "rel":
            lock = self.choice(sorted(self.leaked))
            self.leaked.discard(lock)
            return ("rel", lock)
        if kind == "wait":
            return ("wait", self.expr(ghosts=False))
        if kind in ("fail", "raise"):
            # not r == 0 (or False): that would fire before the thread's first step
            return (kind, self.choice(_NONZERO))
        if kind == "ghost":
            return (kind, self.choice(CONSTS))
        if kind == "gadd":
            return ("gadd", self.pick(1, 2))
        if kind == "if":
            return ("if", self.choice(CONSTS), self.body(depth + 1, held))
        assert kind == "free"
        return ("free", self.choice(self.objects))

    def body(self, depth: int, held: tuple[int, ...]) -> tuple[Op, ...]:
        return tuple(self.op(depth, held) for _ in range(self.pick(1, self.shape.body)))

    def who(self) -> str | None:
        i = self.pick(0, self.nthreads)
        return None if i == 0 else f"t{i - 1}"

    def atom(self, ghosts: bool, negated: bool = False) -> tuple[Any, ...]:
        kind = self.choice(_ATOMS)
        if kind in ("held", "owner") and not self.nlocks:
            kind = "v"
        if kind in ("g", "n") and not ghosts:
            kind = "p"
        if kind == "pl" and not self.shape.plain:
            kind = "v"
        if kind == "not" and negated:
            kind = "freed"
        if kind in ("v", "p", "pl"):
            i = self.var()
            cmp = self.choice(CMPS)
            c = self.choice((True, False)) if cmp == "is" else self.choice(CONSTS)
            return (kind, i, cmp, c)
        if kind in ("held", "owner"):
            return (kind, self.pick(0, self.nlocks - 1), self.who())
        if kind == "freed":
            return ("freed", self.choice(self.objects))
        if kind == "g":
            cmp = self.choice(CMPS)
            c = self.choice((True, False)) if cmp == "is" else self.choice(CONSTS)
            return ("g", cmp, c)
        if kind == "n":
            return ("n", self.pick(1, 3))
        return ("not", self.atom(ghosts, negated=True))

    def monotone_atom(self) -> tuple[Any, ...]:
        if self.pick(0, 1) == 0:
            return ("freed", self.choice(self.objects))
        return ("n", self.pick(1, 3))

    def expr(self, ghosts: bool, monotone: bool = False) -> Expr:
        n = self.pick(1, self.shape.atoms)
        atoms = tuple(self.monotone_atom() if monotone else self.atom(ghosts) for _ in range(n))
        return (("and", "or")[self.pick(0, 1)], atoms)

    def check(self, inits: tuple[int | bool, ...], stable_ok: bool) -> tuple[Expr, bool]:
        """An invariant or goal: (expr, stable), its expr false in the initial state."""
        stable = self.pick(0, 3) == 3 and stable_ok
        monotone = stable or self.pick(0, 3) == 3
        e = self.expr(ghosts=True, monotone=monotone)
        if holds_initially(e, inits, self.nlocks):
            # not trivially violated (or reached) before any step; monotone exprs never are
            e = _negate(e)
        return (e, stable)


def _negate(e: Expr) -> Expr:
    """not (a1 and a2 ...) == (not a1 or not a2 ...), and conversely."""
    conj, atoms = e
    neg = tuple(a[1] if a[0] == "not" else ("not", a) for a in atoms)
    return ("or" if conj == "and" else "and", neg)


def wide_spec(pick: Pick, shape: Shape = WIDE) -> WideSpec:
    """Draw a wide random program with ``pick`` (see the comment above)."""
    g = _Gen(pick, shape)
    g.nthreads = pick(2, shape.threads)
    g.nvars = pick(1, shape.vars)
    g.nlocks = pick(0, shape.locks)
    inits = tuple(0 if pick(0, 2) else g.choice(CONSTS) for _ in range(g.nvars))
    g.objects = [f"x{i}" for i in range(g.nvars)] + [f"L{i}" for i in range(g.nlocks)]
    threads: list[list[Op]] = []
    for _ in range(g.nthreads):
        g.leaked = set()
        threads.append([g.op(0, ()) for _ in range(pick(1, shape.ops))])
    invariants = tuple(g.check(inits, shape.stable_invariants)
                       for _ in range(pick(0, shape.checks)))
    goals = tuple(g.check(inits, True) for _ in range(pick(0, shape.checks)))
    finals = tuple(g.expr(ghosts=True) for _ in range(pick(0, shape.checks)))
    # keep brute force fast: drop ops from the end of the heaviest thread
    while True:
        weights = [sum(weight(o) for o in ops) for ops in threads]
        if interleavings(weights) <= shape.interleavings:
            break
        heaviest = max(range(len(threads)), key=lambda t: (weights[t], t))
        threads[heaviest].pop()
    return WideSpec(tuple(tuple(ops) for ops in threads), inits, g.nlocks,
                    invariants, goals, finals)


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "is": lambda a, b: a is b,
}


def holds_initially(e: Expr, inits: tuple[int | bool, ...], nlocks: int) -> bool:
    """Whether ``e`` holds in the initial state (nothing freed, locks free, ghosts 0)."""

    def atom(a: tuple[Any, ...]) -> bool:
        kind = a[0]
        if kind in ("v", "p"):
            return _CMP[a[2]](inits[a[1]], a[3])
        if kind == "pl":
            return _CMP[a[2]](0, a[3])
        if kind in ("held", "owner"):
            return a[2] is None
        if kind == "freed":
            return False
        if kind == "g":
            return _CMP[a[1]](0, a[2])
        if kind == "n":
            return a[1] <= 0
        return not atom(a[1])

    conj, atoms = e
    return all(atom(a) for a in atoms) if conj == "and" else any(atom(a) for a in atoms)


# ------------------------------------------------------------------ rendering as Python
_HEADER = '''\
from pfnlab.explore import (
    Check, Field, Ghost, Instance, Lock, Plain, Program, Shared, atomic, fail, free,
    is_freed, wait_until,
)


class Var(Shared):
    v = Field(0)
{plain}

class Note(Shared):
    g = Ghost(0)
    n = Ghost(0)


def build() -> Instance:
'''


def _operand(a: tuple[Any, ...]) -> str:
    kind = a[0]
    if kind == "v":
        return f"x{a[1]}.v"
    if kind == "p":
        return f"x{a[1]}.peek('v')"
    if kind == "pl":
        return f"x{a[1]}.p"
    if kind == "freed":
        return f"is_freed({a[1]})"
    if kind == "held":
        return f"L{a[1]}.held_by()"
    if kind == "owner":
        return f"L{a[1]}.owner"
    if kind == "g":
        return "note.g"
    if kind == "n":
        return "note.n"
    return _operand(a[1])


def _atom_source(a: tuple[Any, ...]) -> str:
    kind = a[0]
    if kind in ("v", "p", "pl"):
        return f"{_operand(a)} {a[2]} {a[3]!r}"
    if kind in ("held", "owner"):
        who = a[2]
        return f"{_operand(a)} is None" if who is None else f"{_operand(a)} == {who!r}"
    if kind == "g":
        return f"note.g {a[1]} {a[2]!r}"
    if kind == "n":
        return f"note.n >= {a[1]}"
    if kind == "freed":
        return _operand(a)
    return f"not ({_atom_source(a[1])})"


def expr_source(e: Expr) -> str:
    """``e`` as a Python expression (single quotes only, so it fits in f-strings)."""
    conj, atoms = e
    return f" {conj} ".join(_atom_source(a) for a in atoms)


def _message(name: str, e: Expr) -> str:
    """An f-string naming ``name`` and the values of everything ``e`` reads."""
    seen: list[str] = []
    for a in e[1]:
        o = _operand(a)
        if o not in seen:
            seen.append(o)
    return 'f"' + name + ": " + ", ".join(f"{o}={{{o}!r}}" for o in seen) + '"'


def _ops_source(ops: tuple[Op, ...], tname: str, indent: str) -> list[str]:
    out: list[str] = []
    for op in ops:
        kind = op[0]
        if kind in ("r", "pr"):
            out.append(f"r = x{op[1]}.{'v' if kind == 'r' else 'p'}")
        elif kind in ("w", "pw"):
            f = "v" if kind == "w" else "p"
            out.append(f"x{op[1]}.{f} = r + {op[2]}" if op[2] >= 0 else
                       f"x{op[1]}.{f} = r - {-op[2]}")
        elif kind == "wc":
            out.append(f"x{op[1]}.v = {op[2]!r}")
        elif kind == "wcmp":
            out.append(f"x{op[1]}.v = r == {op[2]!r}")
        elif kind == "inc":
            out.append(f"atomic(x{op[1]}, 'v', lambda o: (o + 1, None))")
        elif kind == "xchg":
            out.append(f"r = atomic(x{op[1]}, 'v', lambda o: ({op[2]!r}, o))")
        elif kind == "cs":
            out.append(f"L{op[1]}.acquire()")
            out.extend(_ops_source(op[2], tname, ""))
            out.append(f"L{op[1]}.release()")
        elif kind == "acq":
            out.append(f"L{op[1]}.acquire()")
        elif kind == "rel":
            out.append(f"L{op[1]}.release()")
        elif kind == "wait":
            src = expr_source(op[1])
            out.append(f'wait_until(lambda: {src}, "{src}")')
        elif kind == "free":
            out.append(f'free({op[1]}, "by {tname}")')
        elif kind == "fail":
            out.append(f"if r == {op[1]!r}:")
            out.append(f'    fail("mid-thread", f"{tname}: r == {{r!r}}")')
        elif kind == "raise":
            out.append(f"if r == {op[1]!r}:")
            out.append(f'    raise ValueError(f"{tname}: r == {{r!r}}")')
        elif kind == "ghost":
            out.append(f"note.g = {op[1]!r}")
        elif kind == "gadd":
            out.append(f"note.n = note.n + {op[1]}")
        else:
            assert kind == "if", op
            out.append(f"if r == {op[1]!r}:")
            out.extend(_ops_source(op[2], tname, "    ") or ["    pass"])
    return [indent + line for line in out]


def operations(ops: tuple[Op, ...]) -> list[tuple[Op, ...]]:
    """A thread's top-level ops split at its ("next",) markers."""
    out: list[list[Op]] = [[]]
    for op in ops:
        if op[0] == "next":
            out.append([])
        else:
            out[-1].append(op)
    return [tuple(o) for o in out]


def uses_plain(spec: WideSpec) -> bool:
    """Whether ``spec`` accesses a Plain field (then Var has one)."""
    return "'pr'" in repr(spec) or "'pw'" in repr(spec) or "'pl'" in repr(spec)


def wide_source(spec: WideSpec, name: str = "wide") -> str:
    """``spec`` as a standalone Python module defining ``build()`` and ``PROGRAM``."""
    lines: list[str] = []
    for i, c in enumerate(spec.inits):
        lines.append(f'x{i} = Var("x{i}")')
        if type(c) is bool or c != 0:  # False is not the default 0
            lines.append(f"x{i}.v = {c!r}")
    locks_at = len(lines)
    lines.append('note = Note("note")')
    bodies: list[str] = []
    for t, ops in enumerate(spec.threads):
        parts = operations(ops)
        fns = [f"t{t}"] if len(parts) == 1 else [f"t{t}_{k}" for k in range(len(parts))]
        for fn, part in zip(fns, parts, strict=True):
            lines += ["", f"def {fn}() -> None:", "    r = 0"]
            lines += _ops_source(part, f"t{t}", "    ")
        bodies.append(fns[0] if len(fns) == 1 else "[" + ", ".join(fns) + "]")
    threads = ", ".join(f'"t{t}": {body}' for t, body in enumerate(bodies))
    lines += ["", "return Instance(", f"    threads={{{threads}}},", "    invariants=["]
    for k, (e, stable) in enumerate(spec.invariants):
        lines.append(f'        Check("inv{k}", lambda: {_message(f"inv{k}", e)} '
                     f"if {expr_source(e)} else None, stable={stable}),")
    lines += ["    ],", "    goals=["]
    for k, (e, stable) in enumerate(spec.goals):
        lines.append(f'        Check("goal{k}", lambda: {expr_source(e)}, stable={stable}),')
    lines += ["    ],", "    final_checks=["]
    for k, e in enumerate(spec.finals):
        lines.append(f'        Check("final{k}", lambda: {_message(f"final{k}", e)} '
                     f"if {expr_source(e)} else None),")
    lines += ["    ],", ")"]
    # A lock whose owner the program reads (held_by, .owner) or that it frees must not be
    # a mover lock (the engine refuses both); the others are, and exercise Lipton's
    # reduction.
    text = "\n".join(lines)
    lines[locks_at:locks_at] = [
        f'L{i} = Lock("L{i}", mover=False)'
        if f"L{i}.held_by()" in text or f"L{i}.owner" in text or f"free(L{i}," in text
        else f'L{i} = Lock("L{i}")'
        for i in range(spec.nlocks)]
    body = "\n".join(("    " + line) if line else "" for line in lines)
    header = _HEADER.replace("{plain}", "    p = Plain(0)\n" if uses_plain(spec) else "")
    return f'{header}{body}\n\n\nPROGRAM = Program("{name}", build)\n'


def compile_program(source: str, name: str = "wide") -> Program:
    """The ``PROGRAM`` defined by ``source`` (as rendered by :func:`wide_source`)."""
    namespace: dict[str, Any] = {"__name__": f"pfnlab_{name}"}
    exec(compile(source, f"<{name}>", "exec"), namespace)
    prog = namespace["PROGRAM"]
    assert isinstance(prog, Program)
    return prog


def wide_program(spec: WideSpec, name: str = "wide") -> Program:
    """The Program of ``spec``."""
    return compile_program(wide_source(spec, name), name)
