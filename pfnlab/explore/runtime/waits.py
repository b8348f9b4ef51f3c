"""``wait_until``: a condition over shared state, read without steps, that blocks its thread
until it holds (engine-internal; the model waits with
:func:`~pfnlab.explore.sync.wait_until`, ``wait_for_change`` and ``Srcu.synchronize``).

A wait's attempt is a step whose footprint is what the condition read; a false condition
blocks the thread, and a write to what it read re-checks it (:func:`wake`). A wait that
passes ends its step there: the code after it is the thread's next step (``RESUME``), so a
wait's step has the same footprint whether it passes or not (docs/reductions.md section
2). A condition that is a finding (it raises, reads freed memory, a Guarded field or a
mover lock's owner) is reported at the attempt, its own step; evaluated earlier it only
makes the thread runnable, so that the attempt comes.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore.findings import ASSERTION, EXCEPTION, USE_AFTER_FREE
from pfnlab.explore.runtime import locks
from pfnlab.explore.runtime.blocking import block, unwatch, watch
from pfnlab.explore.runtime.ops import (
    ABORT,
    ACQUIRE,
    NOBODY,
    PASSED,
    PEEK,
    READ,
    RESUME,
    STOPPED,
    Op,
)
from pfnlab.explore.runtime.services import Outcome, Rebuilding, Runtime
from pfnlab.explore.runtime.sites import model_frame, site
from pfnlab.explore.runtime.threads import ThreadState
from pfnlab.explore.shared import HOOKS


def attempt(ex: Runtime, t: ThreadState, op: Op) -> Outcome:
    """``t`` tries wait ``op``: it passes, blocks, or its condition is a finding."""
    ok, reads = evaluate(ex, t, op, attempt=True)
    fp = tuple((i, f, False) for i, f in sorted(reads))
    if ex.finding is not None:  # (the reads that made it: DPOR races them)
        return fp, False, None, ABORT
    t.reads = fp
    races = ex.races
    if races is not None:
        for i, f in sorted(reads):
            # the condition's reads: plain ones race-checked, marked ones acquire
            o = ex.objects[i] if i >= 0 else None
            if o is None:
                continue
            if f == "_freed":  # is_freed(o): the free released it (races.py)
                races.acquire(t.tid, (i, "_freed"))
            elif ex._is_plain(o, f):
                race = races.plain_read(t.tid, (i, f))
                if race is not None:
                    ex._race_finding(t, race, READ, wait=op.field)
                    return fp, ok, None, ABORT
            else:
                races.acquire(t.tid, (i, f))
    if not ok:
        block(ex, t, reads)
        return fp, ok, None, STOPPED
    return fp, ok, None, PASSED


def passed(ex: Runtime, t: ThreadState, op: Op, value: Any) -> None:
    """``t`` passed wait ``op``: its step ends here, and its next one (``RESUME``) runs the
    code after the wait."""
    unwatch(ex, t)
    nxt = Op(RESUME, NOBODY, op.field, value)
    nxt.where = op.where
    t.op = nxt
    t.reads = ()
    t.value = True


def reached(ex: Runtime, t: ThreadState, op: Op) -> None:
    """``t``'s code reached wait ``op``: whether its attempt would pass, and what wakes it."""
    ok, reads = evaluate(ex, t, op)
    t.value = ok
    t.reads = tuple((i, f, False) for i, f in sorted(reads))
    watch(ex, t, reads)


def evaluate(ex: Runtime, t: ThreadState, op: Op, attempt: bool = False
             ) -> tuple[bool, set[tuple[int, str]]]:
    """Evaluate wait ``op``'s condition for ``t``: whether it holds, and what it read. A
    condition that is a finding is reported at the ``attempt`` (module docstring);
    otherwise it counts as holding, so that the attempt comes."""
    reads: set[tuple[int, str]] = set()
    prev_mode, prev_peek = ex.mode, ex.peek
    ex.mode, ex.peek = PEEK, reads
    prev = HOOKS.current
    HOOKS.current = ex
    problem: tuple[str, str, str] | None = None
    ok = False
    try:
        ok = bool(op.arg())
    except Exception as e:  # a broken condition is a finding, not a crash of the tool
        at = model_frame(e)
        problem = (EXCEPTION, "exception", f"condition of wait {op.field!r}: {e!r}"
                   + (f" ({at})" if at else ""))
    finally:
        ex.mode, ex.peek = prev_mode, prev_peek
        HOOKS.current = prev
    if problem is None:
        problem = _problem(ex, t, op, reads)
    if op.grace is not None:  # synchronize_srcu: its own read of the readers
        reads.add((op.grace.__dict__["_idx"], "readers"))
    if problem is None:
        return ok, reads
    if attempt:
        ex._set_finding(t, *problem)
    return not attempt, reads


def _problem(ex: Runtime, t: ThreadState, op: Op, reads: set[tuple[int, str]]
             ) -> tuple[str, str, str] | None:
    """The finding a wait condition that read ``reads`` is, if any."""
    objects = ex.objects
    for i, f in reads:
        why = objects[i].__dict__["_freed"] if i >= 0 and f != "_freed" else None
        if why is not None:  # the waiter polls freed memory (is_freed() itself may ask)
            prop = USE_AFTER_FREE
            if isinstance(why, tuple):
                prop, why = why
            return (USE_AFTER_FREE, prop, f"{t.name} waits on {objects[i].name}.{f} after "
                    f"it was freed ({why}){site(t)}")
    bad = locks.mover_reads(objects, reads)
    if bad:
        return (EXCEPTION, "exception",
                locks.mover_read_error(*bad, f"the condition of wait {op.field!r}"))
    for i, f in reads:
        g = ex._guard_of(objects[i], f) if i >= 0 else None
        if g is not None and not g.lockless_reads:
            return (ASSERTION, "lock-guard",
                    f"the condition of wait {op.field!r} reads {objects[i].name}.{f} "
                    f"without holding its lock (declared Guarded(by={g.by!r})): a waiter "
                    "is a lockless reader; declare lockless_reads=True")
    return None


def wake_object(ex: Runtime, idx: int) -> None:
    """Re-check the threads blocked on any field of object ``idx`` (it was freed)."""
    tids: set[int] = set()
    for (i, _f), w in ex.watch.items():
        if i == idx:
            tids |= w
    if tids:
        wake(ex, tids)


def wake(ex: Runtime, tids: set[int]) -> None:
    """Re-check the pending attempts of threads watching a field that was just written."""
    for tid in sorted(tids):
        t = ex.threads[tid]
        op = t.op
        if op is None:
            continue
        if op.kind == ACQUIRE:  # a pending acquire: enabled exactly while the lock is free
            free = locks.free_now(op)
            t.blocked = not free
            t.value = free
            continue
        if t.stale:
            # its condition is a closure over frames it no longer has: re-checked once it
            # is rebuilt, at the end of this step (``wake_stale``)
            ex.stale_wakes.add(tid)
            continue
        ok, reads = evaluate(ex, t, op)
        t.value = ok
        t.reads = tuple((i, f, False) for i, f in sorted(reads))
        unwatch(ex, t)
        watch(ex, t, reads)
        if ok:
            t.blocked = False


def wake_stale(ex: Rebuilding) -> None:
    """Rebuild the stale waiters this step woke and re-check their conditions. Checking at
    the end of the step gives what checking at each write would: a condition is a function
    of the fields it reads, and every write to them since the last check woke it again
    (docs/reductions.md section 10)."""
    tids = sorted(ex.stale_wakes)
    ex.stale_wakes.clear()
    for tid in tids:
        t = ex.threads[tid]
        if t.op is None:
            continue
        if t.stale:
            ex.rebuild(t)
        wake(ex, {tid})
