"""Field accesses that are not scheduling points: they ride along with the running
thread's step (engine-internal).

A Plain field's access rides along race-checked (races.py: a race is the finding). A
Guarded field's access rides along while the thread holds the guard lock, unless an
operation earlier in the step may have enabled a free of the object (``guard``); otherwise
it is a scheduling point of its own, or, without the lock, the ``lock-guard`` finding when
it is performed (``guarded_op``). A Stable field's read rides along while its object is
pinned (``Execution.stable_read``, joined.py). ``plain`` performs any of them.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore.findings import ASSERTION
from pfnlab.explore.knowledge import freed_key
from pfnlab.explore.runtime import frees
from pfnlab.explore.runtime.fields import apply_update
from pfnlab.explore.runtime.ops import (
    ACTIONS,
    BAD,
    READ,
    RIDE,
    RMW,
    STEP,
    WRITE,
    Halt,
    Op,
)
from pfnlab.explore.runtime.running import Running
from pfnlab.explore.runtime.sites import model_stack, site
from pfnlab.explore.shared import Shared


def plain(ex: Running, kind: int, obj: Shared, field: str, arg: Any,
          race_check: bool = True, traced: bool = True) -> Any:
    """Perform a plain (or guarded, lock held) access as part of the running thread's
    current step."""
    t = ex.running
    assert t is not None
    d = obj.__dict__
    idx = d["_idx"]
    # in the step's footprint even when the access is the finding: the step conflicts
    # with the access it races, and DPOR must try the other order
    ex.plain_fp.append((idx, field, kind != READ))
    if d["_freed"] is not None:
        frees.use_after_free(ex, t, Op(kind, obj, field, arg))
        raise Halt
    before = d[field]
    result: Any = before
    if race_check:
        assert ex.races is not None
        if kind == READ:
            race = ex.races.plain_read(t.tid, (idx, field))
        else:
            race = ex.races.plain_write(t.tid, (idx, field))
        if race is not None:
            ex._race_finding(t, race, kind)
            raise Halt
    after = before
    if kind == WRITE:
        after = arg
        ex._set(obj, d["_name"], field, arg)
    elif kind == RMW:
        after, result = apply_update(arg, before, obj, field)
        ex._set(obj, d["_name"], field, after)
    if kind != WRITE:
        ex._received(t, result)
    if ex._traced is not None and traced:
        where = model_stack()
        ex._traced.plain.append((ACTIONS[kind], d["_name"], field, before, after,
                                 where[-1] if where else ""))
    return result


def guard(ex: Running, obj: Shared, g: Any, kind: int) -> int:
    """Whether a thread's access to the Guarded field ``g`` of ``obj`` rides along with
    its step (``RIDE``), is a scheduling point (``STEP``), or is one the declaration
    forbids (``BAD``: the thread does not hold the lock; only its own steps could
    change that, so it is decided here and reported when the access is performed)."""
    t = ex.running
    lock = getattr(obj, g.by, None)
    if "owner" not in getattr(lock, "__dict__", ()):
        raise RuntimeError(f"{obj.name}.{g.name} is Guarded(by={g.by!r}) but "
                           f"{obj.name}.{g.by} is not a Lock")
    held = t is not None and lock.__dict__["owner"] == t.name
    # Riding along needs the access to commute with every other thread's step while
    # the lock is held. Writes under the lock are excluded by the guard, but a free of
    # the object is not (kvm_destroy_vm frees without mmu_lock): an operation earlier in
    # this step that changed shared state may have enabled that free, so after one
    # the access is a scheduling point of its own - for objects of a class that some
    # model thread frees (learnt like a stable field's promotion: see freeable).
    if held and (kind == READ or not (g.lockless_reads or ex.unstable)) \
            and ex.movers and not (ex.enabling and freeable(ex, obj)):
        return RIDE
    if held or (kind == READ and g.lockless_reads):
        return STEP
    return BAD


def guarded_op(ex: Running, op: Op, g: Any, how: int) -> Op:
    """``op``, an access to Guarded field ``g`` that is a scheduling point: one the
    declaration forbids (``BAD``) is the finding when it is performed, at its own
    step, as in a finer execution (not at the end of the step before it, which would
    cut off what other threads can do in between)."""
    if how == BAD:
        t = ex.running
        verb = ("reads", "writes", "updates")[op.kind]
        lock = getattr(op.obj, g.by)
        op.bad = (ASSERTION, "lock-guard",
                  f"{t.name if t is not None else 'a thread'} {verb} {op.obj.name}."
                  f"{g.name} without holding {lock.__dict__['_name']} (declared "
                  f"Guarded(by={g.by!r}" + (", lockless_reads=True" if g.lockless_reads
                                            else "") + "))"
                  + (site(t) if t is not None else ""))
    return op


def freeable(ex: Running, obj: Shared) -> bool:
    """Whether a model thread has freed an object of ``obj``'s class in this search
    (knowledge.freed_key)."""
    return freed_key(type(obj)) in ex.knowledge
