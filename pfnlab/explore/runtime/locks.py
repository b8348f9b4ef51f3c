"""Locks and SRCU read sections: what acquiring, releasing, entering and leaving do, and when
they join the steps next to them (engine-internal; the model declares them with
:class:`~pfnlab.explore.sync.Lock` and :class:`~pfnlab.explore.sync.Srcu`).

A held lock makes its acquirer *not enabled*, as Flanagan and Godefroid and Nidhugg treat
it: a thread whose pending operation is an acquire watches the lock word from the moment
it reaches it (:func:`pending_acquire`), and is blocked exactly while the lock is held, with
no step of its own (a failed attempt was a step that doubled every contended hand-off:
docs/reductions.md section 1). A release by a thread that does not hold the lock, or leaving an
SRCU section the thread is not in, is a ``lock-balance`` finding. Mover locks and SRCU
sections join the steps next to them (Lipton's reduction, docs/reductions.md section 5):
an acquire runs on into the next operation, a release joins the one before it, and the
footprint of a critical section opened and closed within one step reads the lock word
instead of writing it.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore.findings import ASSERTION
from pfnlab.explore.runtime.blocking import unwatch, watch
from pfnlab.explore.runtime.ops import (
    ABORT,
    ACQUIRE,
    RAN,
    RELEASE,
    WAIT,
    Footprint,
    Op,
)
from pfnlab.explore.runtime.services import Outcome, Runtime
from pfnlab.explore.runtime.sites import site
from pfnlab.explore.runtime.threads import ThreadState
from pfnlab.explore.shared import Shared
from pfnlab.explore.sync import MOVER_FIELD, enter_section, leave_section


def acquire(ex: Runtime, t: ThreadState, op: Op) -> Outcome:
    """``t`` takes a lock (``owner``) or enters an SRCU read section (``readers``)."""
    obj = op.obj
    d = obj.__dict__
    idx = d["_idx"]
    races = ex.races
    if op.field == "readers":
        before = d["readers"]
        ex._set(obj, d["_name"], "readers", enter_section(before, t.name))
        if races is not None:
            races.acquire(t.tid, (idx, "readers"))
            races.release(t.tid, (idx, "readers"), rmw=True)
        return ((idx, "readers", True),), before, None, RAN
    before = d["owner"]
    if before is not None:  # pending_acquire blocked it: the scheduler cannot pick it
        raise RuntimeError(f"engine: {t.name} stepped into {d['_name']}, held by {before}, "
                           "though a held lock's acquirer is not enabled")
    unwatch(ex, t)  # (its own write must not block it: it is no longer waiting)
    ex._set(obj, d["_name"], "owner", t.name)
    if races is not None:
        races.acquire(t.tid, (idx, "owner"))
    return ((idx, "owner", True),), before, None, RAN


def pending_acquire(ex: Runtime, t: ThreadState, op: Op) -> None:
    """``t`` has reached acquire ``op`` of a lock: it watches the lock word (every write
    re-checks it, waits.wake) and is blocked while the lock is held."""
    free = op.obj.__dict__["owner"] is None
    t.value = free
    t.blocked = not free
    watch(ex, t, ((op.obj.__dict__["_idx"], "owner"),))


def release(ex: Runtime, t: ThreadState, op: Op) -> Outcome:
    """``t`` releases a lock or leaves an SRCU read section: a finding if it holds none."""
    obj = op.obj
    d = obj.__dict__
    idx = d["_idx"]
    name = d["_name"]
    races = ex.races
    if op.field == "readers":
        before = d["readers"]
        fp: Footprint = ((idx, "readers", True),)
        if t.name not in before:
            ex._set_finding(t, ASSERTION, "lock-balance",
                            f"{t.name} left an SRCU read section of {name} it is not in"
                            f"{site(t)}")
            return fp, before, None, ABORT
        ex._set(obj, name, "readers", leave_section(before, t.name))
        if races is not None:
            races.acquire(t.tid, (idx, "readers"))
            races.release(t.tid, (idx, "readers"), rmw=True)
        return fp, before, None, RAN
    before = d["owner"]
    fp = ((idx, "owner", True),)
    if before != t.name:
        ex._set_finding(t, ASSERTION, "lock-balance",
                        f"{t.name} released {name} held by {before or 'nobody'}{site(t)}")
        return fp, before, None, ABORT
    ex._set(obj, name, "owner", None)
    if races is not None:
        races.release(t.tid, (idx, "owner"))
    return fp, before, None, RAN


def replay(t: ThreadState, op: Op) -> None:
    """Redo ``t``'s acquire or release as it was done the first time (a rebuild)."""
    d = op.obj.__dict__
    if op.field == "readers":
        d["readers"] = (enter_section if op.kind == ACQUIRE else leave_section)(
            d["readers"], t.name)
    else:
        d["owner"] = t.name if op.kind == ACQUIRE else None


def free_now(op: Op) -> bool:
    """Whether a blocked acquire ``op`` can be retried now (the lock is free)."""
    return op.obj.__dict__.get("owner") is None


def holder(op: Op) -> str:
    """What a thread blocked at acquire ``op`` waits for, for a hang's report."""
    return f"lock {op.obj.name} held by {op.obj.__dict__['owner']}"


def is_mover(ex: Runtime, obj: Shared) -> bool:
    """Whether ``obj``'s acquires and releases may join neighbouring operations: a mover
    Lock or an Srcu (whose owner or readers nothing but their own operations may read;
    reads elsewhere are errors, see :func:`mover_read_error`)."""
    return ex.movers and obj.__dict__.get(MOVER_FIELD) is not None


def joins(ex: Runtime, t: ThreadState, nxt: Op, movers: bool) -> bool:
    """Whether ``t``'s next operation ``nxt`` runs in the current step (Lipton's reduction:
    an acquire is a right mover, a release a left mover; what follows the right movers of a
    step must not block, so that deadlocks are kept). ``movers``: every operation of the
    step so far was a successful acquire of a mover lock."""
    k = nxt.kind
    if k == RELEASE:  # (only a release that is no finding: one is its own step)
        d = nxt.obj.__dict__
        mine = t.name in d["readers"] if nxt.field == "readers" else d["owner"] == t.name
        return mine and is_mover(ex, nxt.obj)
    if not movers:
        return False
    # Only an operation that can never block joins an acquire: one that is enabled now may
    # be disabled in the state where another thread ran first, and that state may be a
    # deadlock (AB-BA) the joined step would step over.
    return k not in (WAIT, ACQUIRE) or (k == ACQUIRE and nxt.field == "readers")


def transient_sections(fp: Footprint, sections: dict[int, list[int]]) -> Footprint:
    """``fp`` with the lock word of every *transient* critical section read, not written.

    A step that takes a mover lock (or enters an SRCU read section) and leaves it again
    before it ends needs the lock free (no section open that matters) and leaves it as it
    found it: against another such step it commutes (both orders: enabled, same state), and
    against a step that takes or drops the lock for good it still conflicts (a read against
    that step's write). So two vCPUs that each take ``mmu_lock``, find
    ``mmu_notifier_retry`` true and drop it again are independent, as in the kernel-level
    step tables. Not used with the race detector, whose lock edges order such sections.
    """
    transient = {i for i, kinds in sections.items()
                 if kinds[0] == ACQUIRE and kinds[-1] == RELEASE
                 and kinds.count(ACQUIRE) == kinds.count(RELEASE)}
    if not transient:
        return fp
    return tuple((i, f, False) if i in transient and f in ("owner", "readers") else (i, f, w)
                 for i, f, w in fp)


def mover_reads(objects: list[Shared], reads: set[tuple[int, str]]
                ) -> tuple[Shared, str] | None:
    """A read of a mover lock's owner or an Srcu's readers among ``reads``, if any."""
    for i, f in reads:
        if i >= 0 and f in ("owner", "readers"):
            obj = objects[i]
            if obj.__dict__.get(MOVER_FIELD) == f:
                return obj, f
    return None


def mover_read_error(obj: Shared, field: str, who: str) -> str:
    """The error for a read of a mover primitive's state outside its own operations."""
    name = obj.__dict__["_name"]
    if field == "owner":
        return (f"{who} reads who holds lock {name}, a mover lock (its acquire joins the next "
                "access, so no other thread can see it held in between): declare it "
                f"Lock({name!r}, mover=False) to make its lock operations steps of their own")
    return (f"{who} reads {name}.readers: only {name}.synchronize() may wait on an Srcu's "
            "readers; use a Field counter and wait_until for another condition")


def observes_mover(obj: Shared, field: str, t: Any) -> str:
    """The error for model code that reads ``obj.field`` through an accessor (``held_by``,
    ``peek``), "" if it may: only the holder may ask who holds a mover lock
    (``lockdep_assert_held``)."""
    if obj.__dict__.get(MOVER_FIELD) != field:
        return ""
    if t is not None and obj.__dict__[field] == t.name:
        return ""
    return mover_read_error(obj, field, "model code")
