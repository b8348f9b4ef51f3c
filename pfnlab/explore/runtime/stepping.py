"""A step of an execution: a thread's pending operation, the operations that join it, and
what follows every step (engine-internal; strategies call ``Execution.step``).

``step`` performs the pending operation and runs the thread's local code up to its next
one (``perform``: field accesses by fields.py; lock, SRCU, wait and free operations by
their own modules, ``PERFORM``); lock operations of mover locks extend the step
(locks.joins); where the step memo has the step's outcome it is applied instead
(stepmemo.py). ``after_step`` adds the step's ghost writes and the visibility proviso to its
footprint and runs the checks the step may have changed.
"""

from __future__ import annotations

from pfnlab.explore.findings import Finding, TraceStep
from pfnlab.explore.runtime import fields, frees, locks, waits
from pfnlab.explore.runtime.ops import (
    ABORT,
    ACQUIRE,
    FAULT,
    FREE,
    OBSERVED,
    PASSED,
    RAN,
    READ,
    RELEASE,
    RESUME,
    RMW,
    STOPPED,
    WAIT,
    WRITE,
    Footprint,
    Op,
    action_name,
)
from pfnlab.explore.runtime.snapshot import RESUMED
from pfnlab.explore.runtime.state import State
from pfnlab.explore.runtime.stepmemo import StepMemo
from pfnlab.explore.runtime.threads import ThreadState
from pfnlab.explore.shared import ALL_FIELDS


def step(ex: StepMemo, tid: int) -> Footprint:
    """Run thread ``tid``'s pending step; returns the step's footprint.

    A step is the pending operation plus the thread's local code up to its next one;
    lock operations of mover locks extend it (see ``_joins``): a successful acquire runs
    on into the next enabled operation, and a release joins the step before it.
    """
    t = ex.threads[tid]
    op = t.op
    if op is None or t.blocked or ex.finding is not None:
        raise RuntimeError(f"thread {t.name} cannot step now")
    mk: tuple[int, ...] | None = None
    taken = ex._take_joined(tid) if ex.joined else ()
    if ex.memo is not None and ex.memo_on():
        mk = ex._memo_key(t)
        out = ex.memo.get(mk)
        if out is not None:
            done = ex._memo_apply(t, out)
            if done is not None:
                return after_step(
                    ex, done + ex._after_take(tid, taken, out.res > 0), tid)
    nstarts, nnoted = len(t.opstarts), len(ex.noted)
    if t.stale:
        ex.rebuild(t)
        op = t.op
        assert op is not None
    ex.schedule.append(tid)
    if ex.log is not None:
        ex.step_pos.append(len(ex.log))
        ex.step_res.append(0)
    ex.nsteps += 1
    if ex.trace_on:
        ex.labels.append(next_label(ex, tid))
    ex.plain_fp = []
    ex.step_joined = []
    ex.ghost_writes = []  # this step's only (the initial run's are in the initial state)
    fp: Footprint = ()
    movers = True  # every operation so far was a successful acquire of a mover lock
    ex.enabling = False  # whether an operation of this step may have enabled another
    joined = False
    sections: dict[int, list[int]] = {}  # mover object -> its operations in this step
    while True:
        ofp, status = perform(ex, t, op, joined)
        progressed = joined or status != STOPPED
        fp = fp + ofp
        if op.kind in (ACQUIRE, RELEASE) and status != STOPPED and \
                locks.is_mover(ex, op.obj):
            sections.setdefault(op.obj.__dict__["_idx"], []).append(op.kind)
        if status == ABORT:
            return fp + tuple(ex.plain_fp) + ex._after_take(tid, taken, True)
        if status in (STOPPED, PASSED) or ex.finding is not None:
            break
        movers = movers and op.kind == ACQUIRE and locks.is_mover(ex, op.obj) and not (
            ex.unstable and (ex.ghost_writes or any(w for _i, _f, w in ex.plain_fp)))
        nxt = t.op
        if nxt is None or not locks.joins(ex, t, nxt, movers):
            break
        op = nxt
        joined = True
    if ex.stale_wakes:
        if ex.finding is None:
            waits.wake_stale(ex)
        else:  # the execution ends here: nobody steps again
            ex.stale_wakes.clear()
    ex._traced = None
    if sections and ex.races is None:
        fp = locks.transient_sections(fp, sections)
    if ex.plain_fp:
        fp = fp + tuple(ex.plain_fp)
    if mk is not None:
        ex._memo_record(mk, t, nstarts, nnoted, fp)
    if taken:
        fp = fp + ex._after_take(tid, taken, progressed)
    return after_step(ex, fp, tid)


def after_step(ex: StepMemo, fp: Footprint, tid: int) -> Footprint:
    """What follows every step: its ghost writes join its footprint, the visibility
    proviso, the invariants and goals it may have changed, the end-of-execution checks,
    and the stable fields it wrote or freed (``_stable_writes``)."""
    ex._stable_writes(tid, fp)
    if ex.ghost_writes:
        fp = fp + tuple((i, f, True) for i, f in ex.ghost_writes)
    visible = ex.visible
    if visible and any(
        (i, f) in visible or (f == ALL_FIELDS and any(v[0] == i for v in visible))
        for i, f, w in fp
        if w
    ):
        fp = (*fp, OBSERVED)
    if ex.finding is None and ex.check_on:
        ex._check_after(fp)
    else:
        ex.ghost_writes = []
    if ex.finding is None:
        ex._check_end()
    return fp


def perform(ex: StepMemo, t: ThreadState, op: Op, joined: bool) -> tuple[Footprint, int]:
    """Perform ``op`` for ``t`` and run ``t`` on to its next operation.

    Returns the operation's footprint and whether ``t`` ran on (``RAN``), stopped at a
    failed attempt (``STOPPED``), passed a wait (``PASSED``) or the step ends here
    without checks (``ABORT``). Field accesses are performed by fields.py; lock, SRCU,
    wait and free operations by their own modules (``PERFORM``)."""
    k = op.kind
    if k == RESUME:  # the thread passed its wait in an earlier step: it runs on now
        ex._received(t, RESUMED)  # its state after this differs from before it
        if ex.log is not None:
            ex.step_res[-1] += 1
        ex._resume(t, op.arg)
        return (), RAN
    if k == FAULT:  # the finding its initial run made (``_died``), at its first step
        made: Finding = op.arg
        ex._set_finding(t, made.kind, made.prop, made.message)
        if ex.finding is not None:
            ex.finding.details = {**made.details, **ex.finding.details}
        if ex.trace_on:
            ex.trace.append(TraceStep(
                index=len(ex.trace), thread=t.name, label=ex.labels[-1],
                where=op.where, action="fault", obj="", field=""))
        return (), ABORT
    d = op.obj.__dict__
    name = d["_name"]
    if op.bad is not None or (d["_freed"] is not None and k != WAIT):
        if op.bad is not None:  # an access the declaration forbids (riding.guarded_op)
            ex._set_finding(t, *op.bad)
        else:
            frees.use_after_free(ex, t, op)
        if ex.trace_on:  # the trace ends with the access that is the finding
            ex.trace.append(TraceStep(
                index=len(ex.trace), thread=t.name,
                label=ex.labels[-1] if not joined else next_label(ex, t.tid),
                where=op.where, action=action_name(k, op.field), obj=name, field=op.field,
                before=d.get(op.field), after=None, joined=joined))
        return ((d["_idx"], op.field, k != READ),), ABORT
    fp, before, result, status = (fields.access(ex, t, op) if k <= RMW
                                  else PERFORM[k](ex, t, op))
    if status == ABORT:
        return fp, ABORT
    if ex.trace_on:
        field = op.field
        label = ex.labels[-1] if not joined else next_label(ex, t.tid)
        after = d.get(field) if k in (WRITE, RMW, ACQUIRE, RELEASE) else None
        ex.trace.append(
            TraceStep(
                index=len(ex.trace),
                thread=t.name,
                label=label,
                where=op.where,
                action=action_name(k, field),
                obj=name if k != WAIT else "",
                field=field,
                before=before,
                after=after,
                failed_attempt=status == STOPPED,
                joined=joined,
                reads=tuple(f"{ex.objects[i].__dict__['_name']}.{f}"
                            for i, f, _w in fp) if k == WAIT else (),
            )
        )
        ex._traced = ex.trace[-1]
    if status == STOPPED:
        return fp, STOPPED
    if k in (WRITE, RMW, RELEASE, FREE):  # (an srcu_read_lock can only disable)
        ex.enabling = True
    ex._received(t, result)
    if ex.log is not None:
        ex.step_res[-1] += 1
    if status == PASSED:
        ex._passed(t, op, result)
        return fp, PASSED
    ex._resume(t, result)
    return fp, RAN


def next_label(ex: State, tid: int) -> str:
    """The label of thread ``tid``'s next step."""
    op = ex.threads[tid].op
    if op is None:
        return "(finished)"
    fn = op.where[-1] if op.where else ""
    return f"{fn}: {op.describe()}" if fn else op.describe()


#: the modules that own each operation kind but field accesses (``perform``)
PERFORM = {ACQUIRE: locks.acquire, RELEASE: locks.release, WAIT: waits.attempt,
           FREE: frees.free}
