"""One execution of a program: threads in greenlets, stepped one scheduling point at a time.

The search strategies drive an :class:`Execution` through a tiny interface:
``enabled()``, ``pending_footprint(tid)``, ``step(tid)``, ``fingerprint()`` and the
``finding`` / ``finished`` attributes. A *step* performs a thread's pending shared access (or
lock, wait, free) and then runs the thread's local code up to its next shared access; plain
and guarded accesses ride along, and lock operations of mover locks join the operations next
to them (``_joins``; docs/reductions.md says why each is sound). The step itself is
stepping.py; a field access that is a step of its own, fields.py; one that rides along with
the step (Plain, Guarded with its lock held, Stable while pinned), riding.py.

State fingerprints combine an incremental (Zobrist) hash of every shared field with one key
per thread: a hash of the values the thread has received from shared state, where a list of
operations resets it when one starts and a summarised call's return replaces what the call
read (threadstate.py). Threads are deterministic, so equal keys mean equal thread states; a
finished thread's key is a constant. A retry loop can come back to an earlier state, so the
state graph may have cycles; DPOR never prunes at a state on its stack.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import greenlet

from pfnlab.explore.findings import TraceStep
from pfnlab.explore.fingerprint import combine, digest
from pfnlab.explore.knowledge import promoted_key
from pfnlab.explore.program import Instance, Program
from pfnlab.explore.races import RaceDetector
from pfnlab.explore.runtime import locks, riding, stepping
from pfnlab.explore.runtime.ops import (
    ACQUIRE,
    FAULT,
    FREE,
    NOBODY,
    PEEK,
    READ,
    RELEASE,
    RESUME,
    RIDE,
    RMW,
    THREAD,
    WAIT,
    WRITE,
    Footprint,
    Op,
)
from pfnlab.explore.runtime.sites import model_stack
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
        return riding.plain(self, READ, obj, field, None)

    def plain_write(self, obj: Shared, field: str, value: Any) -> None:
        """A write of a Plain field: no scheduling point, race-checked."""
        if self.mode != THREAD:
            self.write(obj, field, value)
            return
        riding.plain(self, WRITE, obj, field, value)

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
            return riding.plain(self, READ, obj, s.name, None, race_check=False, traced=False)
        if self._traced is None:
            return riding.plain(self, READ, obj, s.name, None, race_check=False)
        # in a trace the read is a row of its own, joined to the step (a kernel read with
        # its function, and the notes of what it decided, as if it were a step)
        value = riding.plain(self, READ, obj, s.name, None, race_check=False, traced=False)
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
        how = riding.guard(self, obj, g, READ)
        if how == RIDE:
            return riding.plain(self, READ, obj, g.name, None, race_check=False)
        return self._yield(riding.guarded_op(self, Op(READ, obj, g.name), g, how))

    def guarded_write(self, obj: Shared, g: Any, value: Any) -> None:
        """A write of a Guarded field: the guard lock must be held."""
        if self.mode != THREAD:
            self.write(obj, g.name, value)
            return
        how = riding.guard(self, obj, g, WRITE)
        if how == RIDE:
            riding.plain(self, WRITE, obj, g.name, value, race_check=False)
        else:
            self._yield(riding.guarded_op(self, Op(WRITE, obj, g.name, value), g, how))

    def rmw(self, obj: Shared, field: str, update: Callable[[Any], tuple[Any, Any]]) -> Any:
        """An atomic read-modify-write (one scheduling point)."""
        if self.mode == THREAD:
            if self._is_plain(obj, field):
                return riding.plain(self, RMW, obj, field, update)
            g = self._guard_of(obj, field)
            if g is None:
                return self._yield(Op(RMW, obj, field, update))
            how = riding.guard(self, obj, g, RMW)
            if how == RIDE:
                return riding.plain(self, RMW, obj, field, update, race_check=False)
            return self._yield(riding.guarded_op(self, Op(RMW, obj, field, update), g, how))
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
        return stepping.next_label(self, tid)

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
        return stepping.step(self, tid)


#: the hash of each program's initial state (and whether it hashes), with its object count
_INIT_ZOB: weakref.WeakKeyDictionary[Program, tuple[int, bool, str, int]] = \
    weakref.WeakKeyDictionary()
