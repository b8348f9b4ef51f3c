"""The causal core of a finding: the racing pair of steps whose order decides it.

Candidates are pairs of steps of different threads that conflict (same object and field,
or a lock, one of them writing), nearest to the end of the trace first. For each, the
execution is re-run with the later step's thread moved ahead so that the pair runs in the
other order, then completed deterministically (lowest, then highest enabled thread first).
The first pair for which the reordered execution finishes with no finding at all decides
the finding; the result names it and the locks each side held. When no reordering helps,
the finding does not come from a race between two steps (a sequential bug in one thread,
or one that every order shows).

A deciding pair may close a window another pair opened: the second thread looked something
up, the first changed it (and then freed what the lookup found), and only then the second
used it. The window's opening pair is the second thread's read before the first thread's
earliest write of it that precedes the deciding pair and whose reversal, too, ends with no
finding; a fix may order either pair (refresh from the change, or hold off the free).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pfnlab.explore.findings import Finding, TraceStep
from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution
from pfnlab.kernel.ordering import FREED, Ordering, ordering_of

_WRITES = ("write", "rmw", "lock", "unlock", "free", "srcu_read_lock", "srcu_read_unlock")


@dataclass
class Causal:
    """The deciding pair (``first`` ran before ``second`` in the trace), or why none: one
    thread shows it ``alone``, the time budget ran out (``out_of_time``), or reordering each
    of the ``tried`` pairs still ends in a finding."""

    first: int | None = None
    second: int | None = None
    #: the two steps of the deciding pair
    steps: tuple[TraceStep, TraceStep] | None = None
    #: the locks each thread of the deciding pair held at its step
    locks: dict[str, list[str]] = field(default_factory=dict)
    tried: int = 0
    #: the thread that shows it alone ("one thread" for an empty trace)
    alone: str = ""
    out_of_time: bool = False
    #: how the kernel orders the pair's steps, where the model declares it for a field
    #: the pair races on (pfnlab.kernel.ordering)
    ordering: Ordering | None = None
    #: the pair that opened the window, where the deciding pair's second thread had run
    #: a step the finding also needs before the first thread's (an atomicity violation:
    #: ``second``'s thread looked something up, ``first``'s thread changed it, then freed or
    #: changed what the lookup found, and only then the lookup's user ran): its two steps,
    #: the locks each held there and the ordering declared for its field
    window: tuple[TraceStep, TraceStep] | None = None
    window_locks: dict[str, list[str]] = field(default_factory=dict)
    window_ordering: Ordering | None = None
    #: for a pair under a common lock: the step of the first one's critical section that
    #: writes the field whose declared ordering is ``ordering`` (the second's never reads it)
    via: TraceStep | None = None


def _accesses(st: TraceStep) -> set[tuple[str, str, bool]]:
    """(object, field, writes) of the step, with the plain accesses that rode along."""
    if st.action == "wait":
        out = {(*r.rsplit(".", 1), False) for r in st.reads}
    else:
        out = {(st.obj, st.field, st.action in _WRITES)}
    out |= {(o, f, a != "read") for a, o, f, _b, _af, _fn in st.plain}
    return out  # type: ignore[return-value]


def conflicts(a: TraceStep, b: TraceStep) -> bool:
    """Whether two steps touch the same field (or lock, or freed object), one writing."""
    if a.failed_attempt or b.failed_attempt:
        return False
    for oa, fa, wa in _accesses(a):
        for ob, fb, wb in _accesses(b):
            if oa == ob and (wa or wb) and (fa == fb or "*" in (fa, fb)):
                return True
    return False


def _locksets(trace: list[TraceStep]) -> list[frozenset[str]]:
    held: dict[str, set[str]] = {}
    out = []
    for st in trace:
        h = held.setdefault(st.thread, set())
        out.append(frozenset(h))
        if st.action == "lock" and not st.failed_attempt:
            h.add(st.obj)
        elif st.action == "unlock":
            h.discard(st.obj)
    return out


def _follow(ex: Execution, order: list[str], key: tuple[str, str] | None = None) -> bool:
    """Step ``ex`` through ``order`` (a thread name per scheduling step) until a finding
    (``key``'s, or any that ends the execution) or the end; False if a thread of
    ``order`` could not step when its turn came."""
    names = ex.thread_names()
    for th in order:
        if ex.finding is not None or ex.finished or (key is not None and ex.found(key)):
            break
        tid = names.index(th)
        if tid not in ex.enabled():
            return False
        ex.step(tid)
    return True


def _run(program: Program, order: list[str], key: tuple[str, str],
         pick_last: bool, max_steps: int) -> str:
    """Run ``order``, then the lowest (or highest) enabled thread each step: ``same``
    (``key``'s finding), ``other`` (another finding), ``clean`` or ``infeasible``."""
    ex = Execution(program, max_steps=max_steps)
    try:
        if not _follow(ex, order, key):
            return "infeasible"
        while ex.finding is None and not ex.finished and not ex.found(key):
            en = ex.enabled()
            if not en:
                break
            ex.step(en[-1] if pick_last else en[0])
        if ex.found(key):
            return "same"
        return "other" if ex.findings() else "clean"
    finally:
        ex.close()


def causal_core(program: Program, finding: Finding, *, max_pairs: int = 60,
                max_steps: int = 10_000, deadline: float | None = None) -> Causal:
    """Compute the causal core of ``finding`` (see the module docstring); past ``deadline``
    (a ``time.perf_counter()`` value) it stops trying pairs and says so."""
    tr = finding.trace
    threads = list(dict.fromkeys(st.thread for st in tr))
    if len(threads) < 2:
        return Causal(alone=threads[0] if threads else "one thread")
    pairs = [(i, j) for j in range(len(tr)) for i in range(j)
             if tr[i].thread != tr[j].thread and conflicts(tr[i], tr[j])]
    pairs.sort(key=lambda p: (-p[1], -p[0]))
    locks = _locksets(tr)
    # one entry per scheduling step: an operation that joined the step before it (a lock
    # acquire runs on into the next access, a release joins the one before) is not one
    order: list[str] = []   # the thread of each scheduling step
    unit: list[int] = []    # the scheduling step of each trace entry
    for st in tr:
        if not st.joined or not order:
            order.append(st.thread)
        unit.append(len(order) - 1)
    tried = 0
    found: Causal | None = None
    nearest: Causal | None = None
    with _Objects(program, order) as objs:
        for i, j in pairs[:max_pairs]:
            if deadline is not None and time.perf_counter() >= deadline:
                if found is not None:
                    break
                return Causal(tried=tried, out_of_time=True)
            declared = _declared(objs, tr[i], tr[j], serialised=bool(locks[i] & locks[j]))
            if found is not None and declared is None:
                continue  # looking on only for a pair the kernel has an ordering for
            tried += 1
            if not _reversal_clean(program, finding, order, unit, i, j, max_steps):
                continue
            a, c = tr[i], tr[j]
            pair = Causal(i, j, (a, c),
                          {a.thread: sorted(locks[i]), c.thread: sorted(locks[j])}, tried,
                          ordering=declared)
            if declared is None and locks[i] & locks[j]:
                pair.ordering, pair.via = _section_ordering(objs, tr, locks, i, j)
            if pair.ordering is not None:
                found = pair
                break
            if found is None:  # the nearest deciding pair: its window is looked for once
                _window(program, finding, order, unit, locks, pair, max_pairs, max_steps,
                        deadline)
                if pair.window_ordering is not None:
                    return pair  # the window it closes is what the kernel orders
                nearest = pair
            # the nearest deciding pair has no kernel ordering, nor has the lookup that
            # opened its window: a fix is told only in generic terms; a pair further from
            # the end that also decides the finding, on a field the kernel orders, is the
            # one a fix orders (a lookup that ran before the PTE changed, rather than the
            # reference counts that followed)
            found = found or pair
    if found is None:
        return Causal(tried=tried)
    if found is not nearest:
        _window(program, finding, order, unit, locks, found, max_pairs, max_steps, deadline)
    return found


def _reversal_clean(program: Program, finding: Finding, order: list[str], unit: list[int],
                    i: int, j: int, max_steps: int) -> bool:
    """Whether running trace entry ``j``'s thread up to ``j`` before entry ``i`` (then
    freely) ends with no finding at all."""
    b = finding.trace[j].thread
    ui, uj = unit[i], unit[j]
    moved = [k for k in range(ui, uj + 1) if order[k] == b]
    # b's steps up to j first, then a's step i; from there the execution runs freely
    # (the rest of the old order means nothing once the two threads diverge)
    new = order[:ui] + [order[k] for k in moved] + [order[ui]]
    return any(_run(program, new, finding.key, last, max_steps) == "clean"
               for last in (False, True))


def _window(program: Program, finding: Finding, order: list[str], unit: list[int],
            locks: list[frozenset[str]], c: Causal, max_pairs: int, max_steps: int,
            deadline: float | None) -> None:
    """Find the pair that opened the deciding pair's window (see :attr:`Causal.window`):
    the second thread's step before a step of the first thread that precedes the pair,
    whose reversal too ends with no finding; the second thread's step a read (a lookup)
    and the first thread's a change of what it read: the first thread's earliest such step
    (where it first ran into the window), with the second thread's latest read before it."""
    assert c.first is not None and c.steps is not None
    tr = finding.trace
    t1, t2 = c.steps[0].thread, c.steps[1].thread
    # a lookup of what the other thread then changed: a read before a write (not a lock)
    cands = [(u, w) for w in range(c.first + 1)
             if tr[w].thread == t1 and tr[w].action in ("write", "rmw", "free")
             for u in range(w)
             if tr[u].thread == t2 and tr[u].action == "read" and conflicts(tr[u], tr[w])]
    cands.sort(key=lambda p: (p[1], -p[0]))
    for u, w in cands[:max_pairs]:
        if deadline is not None and time.perf_counter() >= deadline:
            return
        if _reversal_clean(program, finding, order, unit, u, w, max_steps):
            a, b = tr[u], tr[w]
            c.window = (a, b)
            c.window_locks = {t2: sorted(locks[u]), t1: sorted(locks[w])}
            with _Objects(program, order) as objs:
                c.window_ordering = _declared(objs, a, b,
                                              serialised=bool(locks[u] & locks[w]))
            return


class _Objects:
    """The model objects of the trace's execution by name, as it created them (what an
    ordering is declared for is their class); the execution is run on demand, once."""

    def __init__(self, program: Program, order: list[str]) -> None:
        self.program, self.order = program, order
        self.ex: Execution | None = None
        self.by_name: dict[str, object] = {}

    def get(self, name: str) -> object | None:
        if self.ex is None:
            self.ex = Execution(self.program)
            _follow(self.ex, self.order)
            self.by_name = {obj.__dict__["_name"]: obj for obj in self.ex.objects}
        return self.by_name.get(name)

    def __enter__(self) -> _Objects:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ex is not None:
            self.ex.close()


def _ordering_for(objs: _Objects, o: str, f: str, serialised: bool) -> Ordering | None:
    """The ordering declared for field ``f`` of the object named ``o``, if it applies."""
    obj = objs.get(o)
    found = ordering_of(type(obj), f) if obj is not None else None
    if (found is not None and not (found.lockless and serialised)
            and found.orders_object(obj)):
        return found
    return None


def _declared(objs: _Objects, a: TraceStep, b: TraceStep,
              serialised: bool = False) -> Ordering | None:
    """The kernel ordering declared for a field both steps touch (one writing; ``FREED``
    where one of them frees the object), looked up by the class of each object as the
    trace's execution created it; one declared ``lockless`` only if the steps share no
    lock (not ``serialised``)."""
    shared = [(o, FREED if "*" in (f, f2) else f)
              for o, f, w in _accesses(a) for o2, f2, w2 in _accesses(b)
              if o == o2 and (f == f2 or "*" in (f, f2)) and (w or w2)]
    for o, f in shared:
        found = _ordering_for(objs, o, f, serialised)
        if found is not None:
            return found
    return None


def _section_ordering(objs: _Objects, tr: list[TraceStep], locks: list[frozenset[str]],
                      i: int, j: int) -> tuple[Ordering | None, TraceStep | None]:
    """For a pair of steps under a common lock whose own field the kernel orders by no
    primitive: the ordering declared for a field the first step's critical section writes
    and the second's does not read (an invalidation raising ``mmu_notifier_count`` under
    ``kvm->mmu_lock``, a fault installing under it without looking), and the step that
    writes it: the later critical section must look at that field and back off."""
    common = locks[i] & locks[j]

    def section(k: int) -> list[TraceStep]:
        th, lo, hi = tr[k].thread, k, k
        while lo > 0 and not (tr[lo].thread == th and tr[lo].action == "lock"
                              and tr[lo].obj in common and not tr[lo].failed_attempt):
            lo -= 1
        while hi + 1 < len(tr) and not (tr[hi].thread == th and tr[hi].action == "unlock"
                                        and tr[hi].obj in common):
            hi += 1
        return [st for st in tr[lo:hi + 1] if st.thread == th]

    read_by_b = {(o, f) for st in section(j) for o, f, _w in _accesses(st)}
    for st in section(i):
        if st.action in ("lock", "unlock"):
            continue
        for o, f, w in sorted(_accesses(st)):
            if w and (o, f) not in read_by_b:
                found = _ordering_for(objs, o, f, True)
                if found is not None:
                    return found, st
    return None, None
