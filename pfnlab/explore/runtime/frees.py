"""Freeing a shared object: a step that conflicts with every access to it, after which any
access is a use after free (engine-internal; the model frees with
:func:`~pfnlab.explore.shared.free`)."""

from __future__ import annotations

from pfnlab.explore.findings import EXCEPTION, USE_AFTER_FREE
from pfnlab.explore.knowledge import freed_key
from pfnlab.explore.races import Race
from pfnlab.explore.runtime.ops import ABORT, RAN, Op
from pfnlab.explore.runtime.services import Outcome, Runtime
from pfnlab.explore.runtime.sites import site
from pfnlab.explore.runtime.threads import ThreadState
from pfnlab.explore.runtime.waits import wake_object
from pfnlab.explore.shared import ALL_FIELDS, Shared
from pfnlab.explore.sync import MOVER_FIELD


def free(ex: Runtime, t: ThreadState, op: Op) -> Outcome:
    """``t`` frees ``op.obj`` (``op.arg``: why, or (property, why))."""
    obj = op.obj
    d = obj.__dict__
    name = d["_name"]
    fp = ((d["_idx"], ALL_FIELDS, True),)
    if ex.movers and type(obj)._has_guarded_:
        # guarded accesses of this class rode along after writes on the premise that no
        # thread frees such an object (riding.guard): from now on they do not
        ex.knowledge.learn(freed_key(type(obj)))
    if d.get(MOVER_FIELD) is not None and ex.movers:
        # a release joins the step before it on the premise that nothing but lock
        # operations touches the lock in between; a free would, and could then be enabled
        # by that very step and missed
        ex._set_finding(
            t, EXCEPTION, "exception",
            f"{t.name} frees {name}, a mover lock or Srcu (its operations join the steps next "
            "to them, which a free in between would split): declare it "
            f"Lock({name!r}, mover=False) if the model frees it{site(t)}")
        return fp, None, None, ABORT
    races = ex.races
    if races is not None and type(obj)._has_plain_:
        keys = [(d["_idx"], f) for f in type(obj)._fields_ if ex._is_plain(obj, f)]
        race = races.free(t.tid, keys)
        if race is not None:
            free_race(ex, t, obj, race)
            return fp, None, None, ABORT
    why = op.arg or "freed"
    if ex.log is not None:
        ex.log.append((d, "_freed", None, why))
    d["_freed"] = why
    ex._zob(name, "_freed", why)
    if races is not None:
        races.release(t.tid, (d["_idx"], "_freed"))
    wake_object(ex, d["_idx"])
    return fp, None, None, RAN


def replay(op: Op) -> None:
    """Redo a free as it was done the first time (a rebuild)."""
    op.obj.__dict__["_freed"] = op.arg or "freed"


def use_after_free(ex: Runtime, t: ThreadState, op: Op) -> None:
    """``t``'s operation ``op`` touches an object already freed."""
    why = op.obj.__dict__["_freed"]
    prop = USE_AFTER_FREE
    if isinstance(why, tuple):
        prop, why = why
    ex._set_finding(t, USE_AFTER_FREE, prop,
                    f"{t.name} {op.describe()} after it was freed ({why})")


def free_race(ex: Runtime, t: ThreadState, obj: Shared, race: Race) -> None:
    """``t`` frees ``obj`` while another thread's plain access to it is unordered: in
    another interleaving the access comes after the free."""
    op = t.op
    why = op.arg if op is not None else ""
    prop = USE_AFTER_FREE
    if isinstance(why, tuple):
        prop, why = why
    other = ex.threads[race.earlier_tid].name
    ex._set_finding(
        t, USE_AFTER_FREE, prop,
        f"{other} {race.earlier_kind}s {obj.name}.{race.key[1]} with nothing ordering it "
        f"before {t.name} frees it ({why or 'freed'}): in another interleaving the access "
        "comes after the free")
