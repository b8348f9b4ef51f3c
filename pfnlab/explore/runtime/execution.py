"""One execution of a program: threads in greenlets, stepped one scheduling point at a time.

The search strategies drive an :class:`Execution` through a tiny interface:
``enabled()``, ``pending_footprint(tid)``, ``step(tid)``, ``fingerprint()`` and the
``finding`` / ``finished`` attributes. A *step* performs a thread's pending shared access (or
lock, wait, free) and then runs the thread's local code up to its next shared access; plain
and guarded accesses ride along, and lock operations of mover locks join the operations next
to them (``_joins``; docs/reductions.md says why each is sound).

State fingerprints combine an incremental (Zobrist) hash of every shared field with one key
per thread: a hash of the values the thread has received from shared state, where a list of
operations resets it when one starts and a summarised call's return replaces what the call
read (threadstate.py). Threads are deterministic, so equal keys mean equal thread states; a
finished thread's key is a constant. A retry loop can come back to an earlier state, so the
state graph may have cycles; DPOR never prunes at a state on its stack.
"""

from __future__ import annotations

import traceback
import weakref
from collections.abc import Callable
from typing import Any

import greenlet

from pfnlab.explore.findings import (
    ASSERTION,
    EXCEPTION,
    Finding,
    TraceStep,
)
from pfnlab.explore.fingerprint import combine, digest
from pfnlab.explore.knowledge import (
    freed_key,
    promoted_key,
)
from pfnlab.explore.program import Instance, Program
from pfnlab.explore.races import RaceDetector
from pfnlab.explore.runtime import frees, locks, waits
from pfnlab.explore.runtime.ops import (
    ABORT,
    ACQUIRE,
    ACTIONS,
    BAD,
    FAULT,
    FREE,
    NOBODY,
    OBSERVED,
    PASSED,
    PEEK,
    RAN,
    READ,
    RELEASE,
    RESUME,
    RIDE,
    RMW,
    STEP,
    STOPPED,
    THREAD,
    WAIT,
    WRITE,
    Footprint,
    Halt,
    Op,
    action_name,
)
from pfnlab.explore.runtime.services import Outcome
from pfnlab.explore.runtime.sites import model_frame, model_stack, site
from pfnlab.explore.runtime.snapshot import RESUMED
from pfnlab.explore.runtime.stepmemo import StepMemo
from pfnlab.explore.runtime.threads import ThreadState
from pfnlab.explore.shared import ALL_FIELDS, HOOKS, Shared
from pfnlab.explore.stable import Stable
from pfnlab.explore.sync import MOVER_FIELD


class Execution(StepMemo):
    """One run of ``program`` from its initial state, stepped by a search strategy."""

    def __init__(
        self,
        program: Program,
        *,
        trace: bool = False,
        check_invariants: bool = True,
        goals_reached: set[str] | None = None,
        max_steps: int = 10_000,
        visible: set[tuple[int, str]] | None = None,
        observed: set[tuple[int, str]] | None = None,
        snapshots: bool = False,
        memo: bool = False,
    ) -> None:
        super().__init__(program, trace=trace, check_invariants=check_invariants,
                         goals_reached=goals_reached, max_steps=max_steps, visible=visible,
                         observed=observed, snapshots=snapshots, memo=memo)
        prev = HOOKS.current
        HOOKS.current = self
        try:
            inst = program.build()
        finally:
            HOOKS.current = prev
        if not isinstance(inst, Instance):
            raise TypeError(
                f"program {program.name!r}: build() returned {type(inst).__name__}, "
                "expected pfnlab.explore.Instance(threads=..., invariants=...)"
            )
        if not inst.threads:
            raise ValueError(f"program {program.name!r} has no threads")
        self.instance = inst
        # Unstable checks read intermediate states: then no reduction may skip a state a
        # write leaves behind (a Guarded write is a step, an acquire does not run on past a
        # write). Stable and final checks lose nothing by it: a stable violation persists.
        self.unstable = any(not c.stable for c in (*inst.invariants, *inst.goals))
        self.threads = []
        self.bodies = list(inst.threads.values())
        for tid, (name, fn) in enumerate(inst.threads.items()):
            self.threads.append(ThreadState(tid, name, greenlet.greenlet(self._trampoline(fn))))
        if self.has_plain:  # without Plain fields there is nothing to race-check
            self.races = RaceDetector(len(self.threads))
            self.snapshots_off("the race detector's clocks are not in the undo log")
        # build() is deterministic (the engine's premise), so every execution of a program
        # starts from the same state: its hash is computed once
        init = _INIT_ZOB.get(program)
        if init is None:
            for obj in self.objects:
                self._hash_object(obj)
            init = _INIT_ZOB[program] = (self.zob, self.hashable, self.unhashable,
                                         len(self.objects))
        elif init[3] != len(self.objects):
            raise RuntimeError(f"program {program.name!r}: build() made {len(self.objects)} "
                               f"shared objects, {init[3]} the first time; build() must be "
                               "deterministic")
        else:
            self.zob, self.hashable, self.unhashable = init[0], init[1], init[2]
        # invariants / goals: per-check read sets, re-evaluated when a step writes into them
        self.inv_reads = [set() for _ in inst.invariants]
        self.goal_reads = [set() for _ in inst.goals]
        # run every thread to its first scheduling point
        self.starting = True  # the initial runs: no thread has a step yet (stable.py)
        for t in self.threads:
            if self.log is not None:
                self.init_pos.append(len(self.log))
            self._resume(t, None)
            if self.finding is not None:
                return
        self.starting = False
        if self.check_on:
            self._check_all()
        self._check_end()

    def read(self, obj: Shared, field: str) -> Any:
        """A field read by model code (a scheduling point when a thread runs)."""
        mode = self.mode
        if mode == THREAD:
            if obj.__dict__.get(MOVER_FIELD) == field:
                raise RuntimeError(locks.mover_read_error(obj, field, "model code"))
            return self._yield(Op(READ, obj, field))
        if mode == PEEK and self.peek is not None:
            self.peek.add((obj.__dict__["_idx"], field))
        return obj.__dict__[field]

    def write(self, obj: Shared, field: str, value: Any) -> None:
        """A field write by model code (a scheduling point when a thread runs)."""
        if self.mode == THREAD:
            self._yield(Op(WRITE, obj, field, value))
            return
        if self.mode == PEEK:
            raise RuntimeError(
                f"invariant or condition wrote {obj.__dict__['_name']}.{field}: checks must "
                "only read shared state"
            )
        d = obj.__dict__
        if self.nsteps or self.threads_started():
            self._zob(d["_name"], field, d[field])
            self._zob(d["_name"], field, value)
            if self.log is not None:
                self.log.append((d, field, d[field], value))
        d[field] = value

    def observe(self, obj: Shared, field: str) -> None:
        """A check or condition read ``obj.field`` through an accessor (``peek``, ``held_by``,
        ``is_freed``): record it like a field read, so writes to it re-check and wake."""
        if self.mode == PEEK and self.peek is not None:
            self.peek.add((obj.__dict__["_idx"], field))
        elif self.mode == THREAD:  # only the holder may ask (lockdep_assert_held)
            error = locks.observes_mover(obj, field, self.running)
            if error:
                raise RuntimeError(error)

    # -------------------------------------------------------------- plain accesses
    def plain_read(self, obj: Shared, field: str) -> Any:
        """A read of a Plain field: no scheduling point, race-checked (see races.py)."""
        if self.mode != THREAD:
            return self.read(obj, field)
        return self._plain(READ, obj, field, None)

    def plain_write(self, obj: Shared, field: str, value: Any) -> None:
        """A write of a Plain field: no scheduling point, race-checked."""
        if self.mode != THREAD:
            self.write(obj, field, value)
            return
        self._plain(WRITE, obj, field, value)

    # ------------------------------------------------------------ stable accesses
    def stable_read(self, obj: Shared, s: Stable[Any]) -> Any:
        """A read of a Stable field: joins the step while the object is pinned (stable.py)."""
        if self.mode != THREAD or not self.movers or \
                promoted_key(type(obj), s.name) in self.knowledge:
            return self.read(obj, s.name)
        t = self.running
        assert t is not None
        ok, reads = self._pinned(obj, s, t.name)
        if not ok:
            return self._yield(Op(READ, obj, s.name))
        self.plain_fp.extend((i, f, False) for i, f in reads)
        if not self.replaying:
            self._join_record(t.tid, obj.__dict__["_idx"], s.name)
        if self.races is not None:
            # a marked read, joined to the step or not: it acquires what the field's last
            # write released (races.py), or the edges would depend on whether a pin is held
            self.races.acquire(t.tid, (obj.__dict__["_idx"], s.name))
        if self.starting:
            # Before its first step a thread has no step to join; the read is a right
            # mover instead: it commutes with every other thread's step up to the reader's
            # first one (no write while pinned, see stable.py), so it is made at once, as
            # part of the initial state. Untraced: the trace has no step to show it under.
            return self._plain(READ, obj, s.name, None, race_check=False, traced=False)
        if self._traced is None:
            return self._plain(READ, obj, s.name, None, race_check=False)
        # in a trace the read is a row of its own, joined to the step (a kernel read with
        # its function, and the notes of what it decided, as if it were a step)
        value = self._plain(READ, obj, s.name, None, race_check=False, traced=False)
        where = model_stack()
        name = obj.__dict__["_name"]
        self.trace.append(TraceStep(
            index=len(self.trace), thread=t.name,
            label=f"{where[-1]}: read {name}.{s.name}" if where else f"read {name}.{s.name}",
            where=where, action="read", obj=name, field=s.name, before=value, joined=True))
        self._traced = self.trace[-1]
        return value

    # ----------------------------------------------------------- guarded accesses
    def guarded_read(self, obj: Shared, g: Any) -> Any:
        """A read of a Guarded field (see shared.Guarded)."""
        if self.mode != THREAD:
            return self.read(obj, g.name)
        how = self._guard(obj, g, READ)
        if how == RIDE:
            return self._plain(READ, obj, g.name, None, race_check=False)
        return self._yield(self._guarded_op(Op(READ, obj, g.name), g, how))

    def guarded_write(self, obj: Shared, g: Any, value: Any) -> None:
        """A write of a Guarded field: the guard lock must be held."""
        if self.mode != THREAD:
            self.write(obj, g.name, value)
            return
        how = self._guard(obj, g, WRITE)
        if how == RIDE:
            self._plain(WRITE, obj, g.name, value, race_check=False)
        else:
            self._yield(self._guarded_op(Op(WRITE, obj, g.name, value), g, how))

    def _guarded_op(self, op: Op, g: Any, how: int) -> Op:
        """``op``, an access to Guarded field ``g`` that is a scheduling point: one the
        declaration forbids (``BAD``) is the finding when it is performed, at its own
        step, as in a finer execution (not at the end of the step before it, which would
        cut off what other threads can do in between)."""
        if how == BAD:
            t = self.running
            verb = ("reads", "writes", "updates")[op.kind]
            lock = getattr(op.obj, g.by)
            op.bad = (ASSERTION, "lock-guard",
                      f"{t.name if t is not None else 'a thread'} {verb} {op.obj.name}."
                      f"{g.name} without holding {lock.__dict__['_name']} (declared "
                      f"Guarded(by={g.by!r}" + (", lockless_reads=True" if g.lockless_reads
                                                else "") + "))"
                      + (site(t) if t is not None else ""))
        return op

    def _guard(self, obj: Shared, g: Any, kind: int) -> int:
        """Whether a thread's access to the Guarded field ``g`` of ``obj`` rides along with
        its step (``RIDE``), is a scheduling point (``STEP``), or is one the declaration
        forbids (``BAD``: the thread does not hold the lock; only its own steps could
        change that, so it is decided here and reported when the access is performed)."""
        t = self.running
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
        # model thread frees (learnt like a stable field's promotion: see _freeable).
        if held and (kind == READ or not (g.lockless_reads or self.unstable)) \
                and self.movers and not (self.enabling and self._freeable(obj)):
            return RIDE
        if held or (kind == READ and g.lockless_reads):
            return STEP
        return BAD

    def _freeable(self, obj: Shared) -> bool:
        """Whether a model thread has freed an object of ``obj``'s class in this search
        (knowledge.freed_key)."""
        return freed_key(type(obj)) in self.knowledge

    def _plain(self, kind: int, obj: Shared, field: str, arg: Any,
               race_check: bool = True, traced: bool = True) -> Any:
        """Perform a plain (or guarded, lock held) access as part of the running thread's
        current step."""
        t = self.running
        assert t is not None
        d = obj.__dict__
        idx = d["_idx"]
        # in the step's footprint even when the access is the finding: the step conflicts
        # with the access it races, and DPOR must try the other order
        self.plain_fp.append((idx, field, kind != READ))
        if d["_freed"] is not None:
            frees.use_after_free(self, t, Op(kind, obj, field, arg))
            raise Halt
        before = d[field]
        result: Any = before
        if race_check:
            assert self.races is not None
            if kind == READ:
                race = self.races.plain_read(t.tid, (idx, field))
            else:
                race = self.races.plain_write(t.tid, (idx, field))
            if race is not None:
                self._race_finding(t, race, kind)
                raise Halt
        after = before
        if kind == WRITE:
            after = arg
            self._set(obj, d["_name"], field, arg)
        elif kind == RMW:
            after, result = apply_update(arg, before, obj, field)
            self._set(obj, d["_name"], field, after)
        if kind != WRITE:
            self._received(t, result)
        if self._traced is not None and traced:
            where = model_stack()
            self._traced.plain.append((ACTIONS[kind], d["_name"], field, before, after,
                                       where[-1] if where else ""))
        return result

    def rmw(self, obj: Shared, field: str, update: Callable[[Any], tuple[Any, Any]]) -> Any:
        """An atomic read-modify-write (one scheduling point)."""
        if self.mode == THREAD:
            if self._is_plain(obj, field):
                return self._plain(RMW, obj, field, update)
            g = self._guard_of(obj, field)
            if g is None:
                return self._yield(Op(RMW, obj, field, update))
            how = self._guard(obj, g, RMW)
            if how == RIDE:
                return self._plain(RMW, obj, field, update, race_check=False)
            return self._yield(self._guarded_op(Op(RMW, obj, field, update), g, how))
        new, result = update(obj.__dict__[field])
        self.write(obj, field, new)
        return result

    def acquire(self, lock: Shared) -> None:
        """Lock acquire by model code."""
        if self.mode != THREAD:
            raise RuntimeError("a lock was taken outside a model thread (in build() or a "
                               "check): only a thread's code takes locks")
        self._yield(Op(ACQUIRE, lock, "owner"))

    def release(self, lock: Shared) -> None:
        """Lock release by model code."""
        if self.mode != THREAD:
            raise RuntimeError("a lock was released outside a model thread (in build() or a "
                               "check): only a thread's code releases locks")
        self._yield(Op(RELEASE, lock, "owner"))

    def share(self, srcu: Shared, delta: int) -> None:
        """Enter (``delta`` 1) or leave (-1) an SRCU read-side section (sync.Srcu)."""
        if self.mode != THREAD:
            raise RuntimeError("an SRCU read section was entered or left outside a model "
                               "thread (in build() or a check): only a thread's code can")
        self._yield(Op(ACQUIRE if delta > 0 else RELEASE, srcu, "readers"))

    def wait(self, cond: Callable[[], object], what: str, prop: str = "",
             grace: Shared | None = None) -> None:
        """Wait until ``cond()`` holds (a scheduling point; may block). ``grace``: the
        condition is ``synchronize_srcu`` of that Srcu (it reads its readers)."""
        if self.mode != THREAD:
            raise RuntimeError("wait_until was called outside a model thread (in build() or "
                               "a check): only a thread's code can wait")
        op = Op(WAIT, NOBODY, what, cond)
        op.grace = grace
        if prop:
            self.hang_props[what] = prop
        self._yield(op)

    def free(self, obj: Shared, why: str | tuple[str, str]) -> None:
        """Free a shared object (a scheduling point that conflicts with every access to it)."""
        if self.mode == THREAD:
            self._yield(Op(FREE, obj, ALL_FIELDS, why))
            return
        obj.__dict__["_freed"] = why or "freed"

    # ------------------------------------------------------------------ scheduler side
    def enabled(self) -> list[int]:
        """Threads that can take a step now (not finished, not blocked)."""
        if self.finding is not None:
            return []
        return [t.tid for t in self.threads if t.op is not None and not t.blocked]

    def live(self) -> list[int]:
        """Threads that have not finished."""
        return [t.tid for t in self.threads if t.op is not None]

    def pending_footprint(self, tid: int) -> Footprint:
        """The footprint of thread ``tid``'s next step (conservative for lock attempts)."""
        op = self.threads[tid].op
        if op is None:
            return ()
        k = op.kind
        if k == WAIT:
            return self.threads[tid].reads
        if k in (RESUME, FAULT):  # what it runs is known when it runs, as for any step
            return ()
        idx = op.obj.__dict__["_idx"]
        return ((idx, op.field, k != READ),)

    def acquiring(self, tid: int) -> int:
        """The object index of the lock thread ``tid``'s next step takes, or -1 (a step
        starts with an acquire or has none: nothing joins an acquire of a lock)."""
        op = self.threads[tid].op
        if op is None or op.kind != ACQUIRE or op.field != "owner":
            return -1
        idx: int = op.obj.__dict__["_idx"]
        return idx

    def waiting(self, tid: int) -> bool:
        """Whether thread ``tid``'s next step is a wait (its condition's reads depend on
        the values it reads)."""
        op = self.threads[tid].op
        return op is not None and op.kind == WAIT

    def label(self, tid: int) -> str:
        """The label of thread ``tid``'s next step."""
        op = self.threads[tid].op
        if op is None:
            return "(finished)"
        fn = op.where[-1] if op.where else ""
        return f"{fn}: {op.describe()}" if fn else op.describe()

    def fingerprint(self) -> int | None:
        """A hash of the whole state (shared fields and thread states), or None if unhashable."""
        if not self.hashable:
            return None
        keys = [self.zob]
        for t in self.threads:
            keys.append(t.key)
            keys.append(int(t.blocked))
        if self.joined:  # what a later write of a stable field decides (stable.py)
            h = self._joined_key()
            if h:  # (0: no record of a field that threads write or free)
                keys.append(h)
        if self.races is not None:
            # happens-before facts that can still decide a race (see RaceDetector.summary)
            # the summary holds only ints and strs, built by races.py: repr is canonical
            keys.append(digest(repr(self.races.summary()).encode()))
        return combine(keys)

    def step(self, tid: int) -> Footprint:
        """Run thread ``tid``'s pending step; returns the step's footprint.

        A step is the pending operation plus the thread's local code up to its next one;
        lock operations of mover locks extend it (see ``_joins``): a successful acquire runs
        on into the next enabled operation, and a release joins the step before it.
        """
        t = self.threads[tid]
        op = t.op
        if op is None or t.blocked or self.finding is not None:
            raise RuntimeError(f"thread {t.name} cannot step now")
        mk: tuple[int, ...] | None = None
        taken = self._take_joined(tid) if self.joined else ()
        if self.memo is not None and self.memo_on():
            mk = self._memo_key(t)
            out = self.memo.get(mk)
            if out is not None:
                done = self._memo_apply(t, out)
                if done is not None:
                    return self._after_step(
                        done + self._after_take(tid, taken, out.res > 0), tid)
        nstarts, nnoted = len(t.opstarts), len(self.noted)
        if t.stale:
            self.rebuild(t)
            op = t.op
            assert op is not None
        self.schedule.append(tid)
        if self.log is not None:
            self.step_pos.append(len(self.log))
            self.step_res.append(0)
        self.nsteps += 1
        if self.trace_on:
            self.labels.append(self.label(tid))
        self.plain_fp = []
        self.step_joined = []
        self.ghost_writes = []  # this step's only (the initial run's are in the initial state)
        fp: Footprint = ()
        movers = True  # every operation so far was a successful acquire of a mover lock
        self.enabling = False  # whether an operation of this step may have enabled another
        joined = False
        sections: dict[int, list[int]] = {}  # mover object -> its operations in this step
        while True:
            ofp, status = self._perform(t, op, joined)
            progressed = joined or status != STOPPED
            fp = fp + ofp
            if op.kind in (ACQUIRE, RELEASE) and status != STOPPED and \
                    locks.is_mover(self, op.obj):
                sections.setdefault(op.obj.__dict__["_idx"], []).append(op.kind)
            if status == ABORT:
                return fp + tuple(self.plain_fp) + self._after_take(tid, taken, True)
            if status in (STOPPED, PASSED) or self.finding is not None:
                break
            movers = movers and op.kind == ACQUIRE and locks.is_mover(self, op.obj) and not (
                self.unstable and (self.ghost_writes or any(w for _i, _f, w in self.plain_fp)))
            nxt = t.op
            if nxt is None or not locks.joins(self, t, nxt, movers):
                break
            op = nxt
            joined = True
        if self.stale_wakes:
            if self.finding is None:
                waits.wake_stale(self)
            else:  # the execution ends here: nobody steps again
                self.stale_wakes.clear()
        self._traced = None
        if sections and self.races is None:
            fp = locks.transient_sections(fp, sections)
        if self.plain_fp:
            fp = fp + tuple(self.plain_fp)
        if mk is not None:
            self._memo_record(mk, t, nstarts, nnoted, fp)
        if taken:
            fp = fp + self._after_take(tid, taken, progressed)
        return self._after_step(fp, tid)

    def _after_step(self, fp: Footprint, tid: int) -> Footprint:
        """What follows every step: its ghost writes join its footprint, the visibility
        proviso, the invariants and goals it may have changed, the end-of-execution checks,
        and the stable fields it wrote or freed (``_stable_writes``)."""
        self._stable_writes(tid, fp)
        if self.ghost_writes:
            fp = fp + tuple((i, f, True) for i, f in self.ghost_writes)
        visible = self.visible
        if visible and any(
            (i, f) in visible or (f == ALL_FIELDS and any(v[0] == i for v in visible))
            for i, f, w in fp
            if w
        ):
            fp = (*fp, OBSERVED)
        if self.finding is None and self.check_on:
            self._check_after(fp)
        else:
            self.ghost_writes = []
        if self.finding is None:
            self._check_end()
        return fp

    def _perform(self, t: ThreadState, op: Op, joined: bool) -> tuple[Footprint, int]:
        """Perform ``op`` for ``t`` and run ``t`` on to its next operation.

        Returns the operation's footprint and whether ``t`` ran on (``RAN``), stopped at a
        failed attempt (``STOPPED``), passed a wait (``PASSED``) or the step ends here
        without checks (``ABORT``). Field accesses are performed here; lock, SRCU, wait and
        free operations by their own modules (``PERFORM``)."""
        k = op.kind
        if k == RESUME:  # the thread passed its wait in an earlier step: it runs on now
            self._received(t, RESUMED)  # its state after this differs from before it
            if self.log is not None:
                self.step_res[-1] += 1
            self._resume(t, op.arg)
            return (), RAN
        if k == FAULT:  # the finding its initial run made (``_died``), at its first step
            made: Finding = op.arg
            self._set_finding(t, made.kind, made.prop, made.message)
            if self.finding is not None:
                self.finding.details = {**made.details, **self.finding.details}
            if self.trace_on:
                self.trace.append(TraceStep(
                    index=len(self.trace), thread=t.name, label=self.labels[-1],
                    where=op.where, action="fault", obj="", field=""))
            return (), ABORT
        d = op.obj.__dict__
        name = d["_name"]
        if op.bad is not None or (d["_freed"] is not None and k != WAIT):
            if op.bad is not None:  # an access the declaration forbids (_guarded_op)
                self._set_finding(t, *op.bad)
            else:
                frees.use_after_free(self, t, op)
            if self.trace_on:  # the trace ends with the access that is the finding
                self.trace.append(TraceStep(
                    index=len(self.trace), thread=t.name,
                    label=self.labels[-1] if not joined else self.label(t.tid),
                    where=op.where, action=action_name(k, op.field), obj=name, field=op.field,
                    before=d.get(op.field), after=None, joined=joined))
            return ((d["_idx"], op.field, k != READ),), ABORT
        fp, before, result, status = self._access(t, op) if k <= RMW else PERFORM[k](self, t, op)
        if status == ABORT:
            return fp, ABORT
        if self.trace_on:
            field = op.field
            label = self.labels[-1] if not joined else self.label(t.tid)
            after = d.get(field) if k in (WRITE, RMW, ACQUIRE, RELEASE) else None
            self.trace.append(
                TraceStep(
                    index=len(self.trace),
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
                    reads=tuple(f"{self.objects[i].__dict__['_name']}.{f}"
                                for i, f, _w in fp) if k == WAIT else (),
                )
            )
            self._traced = self.trace[-1]
        if status == STOPPED:
            return fp, STOPPED
        if k in (WRITE, RMW, RELEASE, FREE):  # (an srcu_read_lock can only disable)
            self.enabling = True
        self._received(t, result)
        if self.log is not None:
            self.step_res[-1] += 1
        if status == PASSED:
            self._passed(t, op, result)
            return fp, PASSED
        self._resume(t, result)
        return fp, RAN

    def _access(self, t: ThreadState, op: Op) -> Outcome:
        """A marked field's read, write or read-modify-write (``READ``, ``WRITE``, ``RMW``)."""
        k = op.kind
        obj = op.obj
        d = obj.__dict__
        field = op.field
        idx = d["_idx"]
        races = self.races
        if races is not None:  # a marked write releases the field, a read acquires it
            if k != WRITE:
                races.acquire(t.tid, (idx, field))
            if k != READ:
                races.release(t.tid, (idx, field), rmw=k == RMW)
        before = d[field]
        if k == READ:
            return ((idx, field, False),), before, before, RAN
        fp = ((idx, field, True),)
        if k == WRITE:
            self._set(obj, d["_name"], field, op.arg)
            return fp, before, None, RAN
        try:
            new, result = apply_update(op.arg, before, obj, field)
        except Exception as e:  # the model's update function: a finding, not a crash
            at = model_frame(e) if not isinstance(e, UpdateError) else ""
            self._set_finding(t, EXCEPTION, "exception",
                              f"{type(e).__name__}: {e} ({at or site(t)[2:-1]})",
                              tb=traceback.format_exc())
            return fp, before, None, ABORT
        self._set(obj, d["_name"], field, new)
        return fp, before, result, RAN

#: the hash of each program's initial state (and whether it hashes), with its object count
_INIT_ZOB: weakref.WeakKeyDictionary[Program, tuple[int, bool, str, int]] = \
    weakref.WeakKeyDictionary()

class UpdateError(TypeError):
    """An ``atomic()`` update function that does not return ``(new, result)``."""


def apply_update(update: Callable[[Any], Any], old: Any, obj: Shared, field: str
                 ) -> tuple[Any, Any]:
    """``update(old)`` as ``atomic()`` applies it: it must return ``(new, result)``."""
    got = update(old)
    if not (isinstance(got, tuple) and len(got) == 2):
        raise UpdateError(f"atomic({obj.__dict__['_name']}, {field!r}, update): update(old) "
                          f"must return (new value, result), not {got!r}")
    return got




#: the modules that own each operation kind but field accesses (``Execution._perform``)
PERFORM = {ACQUIRE: locks.acquire, RELEASE: locks.release, WAIT: waits.attempt,
           FREE: frees.free}
