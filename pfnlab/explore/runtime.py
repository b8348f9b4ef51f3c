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

import contextlib
import sys
import traceback
import weakref
from collections.abc import Callable, Collection
from typing import Any

import greenlet

from pfnlab.explore.checking import Checking
from pfnlab.explore.findings import (
    ASSERTION,
    DATA_RACE,
    EXCEPTION,
    USE_AFTER_FREE,
    Finding,
    ModelViolation,
    TraceStep,
)
from pfnlab.explore.fingerprint import Unencodable, combine, digest, extend, field_key
from pfnlab.explore.knowledge import (
    ALLOCATES,
    Knowledge,
    freed_key,
    promoted_key,
    written_key,
)
from pfnlab.explore.program import Instance, Program
from pfnlab.explore.races import Race, RaceDetector
from pfnlab.explore.shared import ALL_FIELDS, HOOKS, Shared, guard_of, is_plain
from pfnlab.explore.snapshot import RESUMED, Snapshots
from pfnlab.explore.stable import Stable, stable_fields
from pfnlab.explore.stepmemo import StepMemo
from pfnlab.explore.sync import MOVER_FIELD, enter_section, leave_section
from pfnlab.explore.threadstate import _THREAD_MODE, Statics, ops_key

# Pending operation kinds.
READ, WRITE, RMW, ACQUIRE, RELEASE, WAIT, FREE, RESUME, FAULT = range(9)
_ACTION = ("read", "write", "rmw", "lock", "unlock", "wait", "free", "resume", "fault")


def _action(kind: int, field: str) -> str:
    """The trace's name of an operation: an Srcu's read lock and unlock are not a lock's."""
    if field == "readers" and kind in (ACQUIRE, RELEASE):
        return "srcu_read_lock" if kind == ACQUIRE else "srcu_read_unlock"
    return _ACTION[kind]

# Modes of the execution: who is running model code right now.
_SCHED, _THREAD, _PEEK = range(3)
assert _THREAD == _THREAD_MODE  # threadstate.call_summarised tests the mode too

_DONE = digest(b"<finished thread>")

# What ``_perform`` reports: the thread ran on to its next operation, it stopped at a failed
# attempt, the step ends at once (a finding that leaves no state to check), or it passed a
# wait (the step ends there: the code after the wait is the thread's next step, RESUME).
_RAN, _STOPPED, _ABORT, _PASSED = range(4)
#: how a RESUME step (the code after a passed wait) is labelled in traces and schedules
RESUME_LABEL = "continue after wait"
#: how a FAULT step is labelled: the finding a thread's code made before its first step
FAULT_LABEL = "its finding before its first step"

# How a thread's access to a Guarded field is made: part of the current step, a step, or
# a step that is a finding (the lock not held).
_RIDE, _STEP, _BAD = range(3)

#: Footprint entry of a step that changes what some check reads (see ``visible``).
_OBSERVED = (-2, "<observed by a check>", True)

#: A footprint: the (object index, field, is_write) triples a step touches.
Footprint = tuple[tuple[int, str, bool], ...]


def _transient_sections(fp: Footprint, sections: dict[int, list[int]]) -> Footprint:
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


class Op:
    """A thread's pending scheduling point."""

    __slots__ = ("arg", "bad", "field", "grace", "kind", "obj", "where")

    def __init__(self, kind: int, obj: Shared, field: str, arg: Any = None) -> None:
        self.kind = kind
        self.obj = obj
        self.field = field
        self.arg = arg
        self.where: tuple[str, ...] = ()
        self.grace: Shared | None = None  # a wait: the Srcu whose synchronize this is
        #: the finding this access is, made when it is performed (a Guarded field accessed
        #: without its lock): (kind, property, message)
        self.bad: tuple[str, str, str] | None = None

    def describe(self) -> str:
        """A label for this step, without the function name."""
        name = self.obj.__dict__["_name"]
        k = self.kind
        if k in (ACQUIRE, RELEASE):
            return f"{_action(k, self.field)} {name}"
        if k == WAIT:
            return f"wait {self.field}"
        if k == RESUME:
            return f"{RESUME_LABEL} {self.field}"
        if k == FAULT:
            return FAULT_LABEL
        if k == FREE:
            return f"free {name}"
        return f"{_ACTION[k]} {name}.{self.field}"


class ThreadState:
    """The engine's view of one model thread."""

    __slots__ = ("blocked", "depth", "glet", "key", "name", "op", "opstarts", "reads", "stale",
                 "tid", "value", "watched")

    def __init__(self, tid: int, name: str, glet: greenlet.greenlet) -> None:
        self.tid = tid
        self.name = name
        self.glet = glet
        self.op: Op | None = None      # None once finished
        self.key = digest(name.encode())  # history key (128-bit, see fingerprint.py)
        self.depth = 0                 # summarised calls in progress (threadstate.py)
        self.blocked = False           # failed an attempt; waits for a write to `reads`
        self.reads: Footprint = ()     # footprint of the pending lock/wait attempt
        self.value = False             # whether the pending lock/wait attempt would succeed
        self.watched: list[tuple[int, str]] = []  # fields whose writes re-check the attempt
        self.stale = False             # glet is ahead of the state (snapshot.py)
        #: where each of its operations started, to rebuild from the last (snapshot.py)
        self.opstarts: list[tuple[int, int, int, int, bool, int]] = []


_ENGINE_FILES = {
    __file__.rsplit("/", 1)[0] + "/" + f
    for f in ("runtime.py", "checking.py", "shared.py", "stable.py", "sync.py",
              "threadstate.py")
}


#: the names traces show for the code objects of named functions (see name_code)
_CODE_NAMES: dict[Any, str] = {}


def name_code(fn: Callable[..., Any], name: str) -> None:
    """Name ``fn``'s frames ``name``: traces show them so (an override under the name of the
    kernel function it replaces, whatever its Python name) and :func:`model_caller` stops
    at them."""
    import inspect

    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is not None:
        _CODE_NAMES[code] = name


def hide_from_traces(filename: str) -> None:
    """Leave the functions of ``filename`` out of step labels (dispatch wrappers)."""
    _ENGINE_FILES.add(filename)


class Execution(Checking, Snapshots, StepMemo):
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
        self.program = program
        #: stable fields whose reads are steps for this program (stable.py); live: a
        #: promotion during this execution applies to its later reads
        self.knowledge: Knowledge = program.knowledge
        # checkpoints (snapshot.py): the undo log, per-step and per-thread records
        self.no_snapshots = "" if snapshots else "not requested"
        if snapshots and ALLOCATES in self.knowledge:
            snapshots = False
            self.no_snapshots = "a thread creates shared objects"
        self.log: list[tuple[dict[str, Any], str, Any, Any]] | None = [] if snapshots else None
        self.step_pos: list[int] = []
        self.step_res: list[int] = []
        self.init_pos: list[int] = []
        self.rebuilds = 0
        self.rebuilt_steps = 0
        self.replaying = False
        # step outcomes (stepmemo.py): with checkpoints, where the search caches states
        self.memo: dict[tuple[int, ...], Any] | None = {} if snapshots and memo else None
        self.memo_hits = 0
        self._ghost_cache: dict[tuple[type, str], bool] = {}
        self.stale_wakes: set[int] = set()  # stale waiters a write woke (``_wake``)
        #: stable reads joined to their thread's last step (stable.py): (object index,
        #: field) -> the threads whose last step (or initial run) made one (part of the
        #: state: ``_joined_key``)
        self.joined: dict[tuple[int, str], tuple[int, ...]] = {}
        self._stable_cache: dict[tuple[type, str], str] = {}
        #: the records the step under way made (the step memo keeps them with its outcome)
        self.step_joined: list[tuple[int, str]] = []
        self.starting = False
        #: Lipton's reduction for mover locks and SRCU (``_joins``), call summaries
        self.movers = program.reduce
        self.trace_on = trace
        self.check_on = check_invariants
        self.max_steps = max_steps
        self.objects: list[Shared] = []
        self.names: dict[str, Shared] = {}
        self.mode = _SCHED
        self.peek: set[tuple[int, str]] | None = None
        self.hashable = True
        self.unhashable = ""             # why state caching is off, if it is
        self.statics: Statics | None = None  # set-up objects (threadstate.py)
        self.zob = 0
        self.nsteps = 0
        self.finding: Finding | None = None   # the halting finding (checking.py)
        self.noted: list[Finding] = []         # findings the execution went on past
        self.noted_keys: set[tuple[str, str]] = set()
        self.inv_false: set[int] = set()       # stable invariants found false
        self.replayed = False                  # checking a re-executed prefix's end state
        self.finished = False            # every thread finished (final checks done)
        self.schedule: list[int] = []    # tids chosen so far
        self.trace: list[TraceStep] = []
        self.labels: list[str] = []
        self.watch: dict[tuple[int, str], set[int]] = {}
        self.goals_reached = goals_reached if goals_reached is not None else set()
        # The visibility proviso: a step that writes a field some invariant reads gets a write
        # of a pseudo-object in its footprint, so the reduced search orders all such steps.
        # ``observed`` accumulates every field any invariant has read (the search grows
        # ``visible`` to it until nothing new is observed). Final checks need no such care:
        # equivalent interleavings end in the same state.
        self.visible: set[tuple[int, str]] = visible if visible is not None else set()
        self.observed: set[tuple[int, str]] = observed if observed is not None else set()
        self._main: greenlet.greenlet | None = None
        self.context: Any = None
        self.ghost_writes: list[tuple[int, str]] = []
        self.hang_props: dict[str, str] = {}
        self._traced: TraceStep | None = None  # trace mode: the step whose thread runs on
        self.running: ThreadState | None = None  # the thread whose code runs now
        self.plain_fp: list[tuple[int, str, bool]] = []  # plain accesses of this step
        self.enabling = False            # this step changed state another thread may wait on
        self.has_plain = False           # some object has Plain fields: detect races
        self.races: RaceDetector | None = None
        self._plain_cache: dict[tuple[type, str], bool] = {}
        self._guard_cache: dict[tuple[type, str], Any] = {}

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
        self.threads: list[ThreadState] = []
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
        self.inv_reads: list[set[tuple[int, str]]] = [set() for _ in inst.invariants]
        self.goal_reads: list[set[tuple[int, str]]] = [set() for _ in inst.goals]
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

    # ------------------------------------------------------------------ registration
    def register(self, obj: Shared) -> int:
        """Give a newly created shared object its index (called by Shared.__init__)."""
        name = obj.__dict__["_name"]
        if name in self.names:
            raise ValueError(f"two shared objects are both named {name!r}; names must be unique")
        self.names[name] = obj
        self.objects.append(obj)
        if self.threads_started() and self.log is not None:
            # A rebuilt thread would create it again (snapshot.py): the program is run
            # without checkpoints from now on. Learnt like a promotion, so the search starts
            # again (knowledge.ALLOCATES); the log stays on to the end of this step, which may
            # still rebuild a stale waiter it wakes, and its outcome is not memoised.
            self.knowledge.learn(ALLOCATES)
        if type(obj)._has_plain_:
            self.has_plain = True
            if self.races is None and self.threads_started():
                # created mid-run: clocks start now, so earlier synchronisation orders
                # nothing (more races reported, never fewer)
                self.races = RaceDetector(len(self.threads))
        if self.mode != _SCHED or self.nsteps:
            self._hash_object(obj)
        return len(self.objects) - 1

    def _hash_object(self, obj: Shared) -> None:
        d = obj.__dict__
        name = d["_name"]
        for f in type(obj)._fields_:
            self._zob(name, f, d[f])

    def _zob(self, name: str, field: str, value: Any) -> None:
        if not self.hashable:
            return
        try:
            self.zob ^= field_key(name, field, value)
        except Unencodable as e:
            self.hashable = False
            self.unhashable = f"{name}.{field}: {e}"

    # ------------------------------------------------------------------ thread side
    def _trampoline(self, fn: Any, start: int = 0) -> Callable[[Any], object]:
        if callable(fn):
            def run(_first: Any) -> object:
                return fn()

            return run
        ops = list(fn)

        def run_ops(_first: Any) -> object:
            for i in range(start, len(ops)):
                self._operation_starts(ops, i)
                ops[i]()
            return None

        return run_ops

    def _operation_starts(self, ops: list[Any], index: int) -> None:
        """A thread given as a list of operations starts ``ops[index]``: its state is now the
        operations left, so its history key becomes their key (see threadstate.py)."""
        t = self.running
        if t is not None and self.log is not None and not self.replaying:
            # a rebuild may start here (snapshot.py): the step, the log, the operation, the
            # key before it, and how far the step had got
            t.opstarts.append((len(self.schedule) - 1, len(self.log), index, t.key,
                               self.enabling, self.step_res[-1] if self.schedule else 0))
        if t is None or not self.hashable:
            return
        # The thread is deterministic, so its key here determines the operations left and
        # their encoding: memoised for every execution of this program.
        memo = _OPS_MEMO.get(self.program)
        if memo is None:
            memo = _OPS_MEMO[self.program] = {}
        mk = (t.key, index)
        key = memo.get(mk, -1)
        if key == -1:
            if self.statics is None:
                self.statics = Statics(list(self.instance.threads.values()))
            key = memo[mk] = ops_key(t.name, ops, index, self.statics)
        if key is not None:
            t.key = key

    def _yield(self, op: Op) -> Any:
        if self.trace_on:
            op.where = _model_stack()
        assert self._main is not None
        return self._main.switch(op)

    def read(self, obj: Shared, field: str) -> Any:
        """A field read by model code (a scheduling point when a thread runs)."""
        mode = self.mode
        if mode == _THREAD:
            if obj.__dict__.get(MOVER_FIELD) == field:
                raise RuntimeError(_mover_read(obj, field, "model code"))
            return self._yield(Op(READ, obj, field))
        if mode == _PEEK and self.peek is not None:
            self.peek.add((obj.__dict__["_idx"], field))
        return obj.__dict__[field]

    def write(self, obj: Shared, field: str, value: Any) -> None:
        """A field write by model code (a scheduling point when a thread runs)."""
        if self.mode == _THREAD:
            self._yield(Op(WRITE, obj, field, value))
            return
        if self.mode == _PEEK:
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
        if self.mode == _PEEK and self.peek is not None:
            self.peek.add((obj.__dict__["_idx"], field))
        elif self.mode == _THREAD and obj.__dict__.get(MOVER_FIELD) == field:
            t = self.running
            if t is None or obj.__dict__[field] != t.name:  # lockdep_assert_held is fine
                raise RuntimeError(_mover_read(obj, field, "model code"))

    def ghost_write(self, obj: Shared, field: str, value: Any) -> None:
        """A ghost-field write: hashed into the state, re-checks invariants, not a step."""
        d = obj.__dict__
        if self.replaying:
            d[field] = value
            return
        if self.threads_started():
            if self.log is not None:
                self.log.append((d, field, d[field], value))
            self._zob(d["_name"], field, d[field])
            self._zob(d["_name"], field, value)
            self.ghost_writes.append((d["_idx"], field))
            if self._traced is not None:
                self._traced.ghosts.append((d["_name"], field, d[field], value))
        d[field] = value

    def note(self, text: str) -> None:
        """Trace mode: attach ``text`` to the step after which the running thread goes on."""
        if self._traced is not None:
            self._traced.notes.append(text)

    def threads_started(self) -> bool:
        """Whether set-up is over (threads exist)."""
        return bool(getattr(self, "threads", None))

    # -------------------------------------------------------------- plain accesses
    def plain_read(self, obj: Shared, field: str) -> Any:
        """A read of a Plain field: no scheduling point, race-checked (see races.py)."""
        if self.mode != _THREAD:
            return self.read(obj, field)
        return self._plain(READ, obj, field, None)

    def plain_write(self, obj: Shared, field: str, value: Any) -> None:
        """A write of a Plain field: no scheduling point, race-checked."""
        if self.mode != _THREAD:
            self.write(obj, field, value)
            return
        self._plain(WRITE, obj, field, value)

    def _is_plain(self, obj: Shared, field: str) -> bool:
        key = (type(obj), field)
        v = self._plain_cache.get(key)
        if v is None:
            v = self._plain_cache[key] = is_plain(type(obj), field)
        return v

    def _guard_of(self, obj: Shared, field: str) -> Any:
        """The Guarded descriptor of ``obj.field``, or None (cached by type)."""
        key = (type(obj), field)
        try:
            return self._guard_cache[key]
        except KeyError:
            g = self._guard_cache[key] = guard_of(type(obj), field)
            return g

    # ------------------------------------------------------------ stable accesses
    def stable_read(self, obj: Shared, s: Stable[Any]) -> Any:
        """A read of a Stable field: joins the step while the object is pinned (stable.py)."""
        if self.mode != _THREAD or not self.movers or \
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
        where = _model_stack()
        name = obj.__dict__["_name"]
        self.trace.append(TraceStep(
            index=len(self.trace), thread=t.name,
            label=f"{where[-1]}: read {name}.{s.name}" if where else f"read {name}.{s.name}",
            where=where, action="read", obj=name, field=s.name, before=value, joined=True))
        self._traced = self.trace[-1]
        return value

    def _pinned(self, obj: Shared, s: Stable[Any], who: str,
                reads: set[tuple[int, str]] | None = None) -> tuple[bool, set[tuple[int, str]]]:
        """Whether thread ``who`` holds a pin on ``obj`` now (``s.pinned``), and what the
        predicate read (no steps)."""
        if reads is None:
            reads = set()
        if s.pinned is None:  # __ro_after_init
            return True, reads
        prev_mode, prev_peek = self.mode, self.peek
        self.mode, self.peek = _PEEK, reads
        prev = HOOKS.current  # (a write's check runs on the scheduler's side)
        HOOKS.current = self
        try:
            ok = bool(s.pinned(obj, who))
        finally:
            self.mode, self.peek = prev_mode, prev_peek
            HOOKS.current = prev
        return ok, reads

    def _join_record(self, tid: int, idx: int, field: str) -> None:
        """Thread ``tid`` read stable ``field`` of object ``idx`` joined to its current step
        (or initial run): recorded until its next step (stable.py)."""
        key = (idx, field)
        tids = self.joined.get(key, ())
        if tid not in tids:
            self.joined[key] = (*tids, tid)
            self.step_joined.append(key)

    def _take_joined(self, tid: int) -> tuple[tuple[int, str], ...]:
        """Thread ``tid`` takes a step: the reads its last step joined are behind it once
        the step makes progress (program order, in a finer execution too). Removes and
        returns their records: :meth:`_after_take` puts them back if it did not."""
        out = []
        for key, tids in list(self.joined.items()):
            if tid in tids:
                rest = tuple(u for u in tids if u != tid)
                if rest:
                    self.joined[key] = rest
                else:
                    del self.joined[key]
                out.append(key)
        return tuple(out)

    def _after_take(self, tid: int, taken: tuple[tuple[int, str], ...],
                    progressed: bool) -> Footprint:
        """After ``tid``'s step: a failed attempt (a lock or wait that blocked at once)
        keeps the records ``taken`` (nothing of the thread's moved: the state stays one
        state whether or not it tried); a step that progressed clears them and reads their
        fields in its footprint, so that a write of one is ordered against it as against
        the step that read it: whether the record is there at the write is the same in
        every equivalent execution."""
        if not progressed:
            for key in taken:
                tids = self.joined.get(key, ())
                if tid not in tids:
                    self.joined[key] = (*tids, tid)
            return ()
        return tuple((i, f, False) for i, f in taken)

    def _stable_writes(self, tid: int, fp: Footprint) -> None:
        """After a step of ``tid`` with footprint ``fp``: a write or free of a stable field
        that another thread's last step read joined to it promotes the field (in a finer
        execution that read may come after this write: it was no left mover); and the
        first write of a stable field, or free of an object with stable fields, by a model
        thread is learnt (the records of such fields join the fingerprint: stable.py)."""
        joined = self.joined
        for i, f, w in fp:
            if not w or i < 0:
                continue
            obj = self.objects[i]
            cls = type(obj)
            if f == ALL_FIELDS:
                fields = stable_fields(cls)
                if not fields:
                    continue
                self.knowledge.learn(written_key(cls, ALL_FIELDS))
                keys = [k for k in joined if k[0] == i]
            else:
                kind = self._stable_cache.get((cls, f))
                if kind is None:
                    kind = self._stable_cache[(cls, f)] = \
                        written_key(cls, f) if any(x.name == f for x in stable_fields(cls)) \
                        else ""
                if not kind:
                    continue
                self.knowledge.learn(kind)
                fields = tuple(x for x in stable_fields(cls) if x.name == f)
                keys = [(i, f)] if (i, f) in joined else []
            for key in keys:
                if any(u != tid for u in joined[key]):
                    self.knowledge.learn(promoted_key(cls, key[1]))
            self._eager_promotions(tid, obj, fields)

    def _eager_promotions(self, tid: int, obj: Shared, fields: tuple[Stable[Any], ...]
                          ) -> None:
        """Promote each of ``fields`` (just written or freed by ``tid``) that another
        thread holds a pin on now. Not what soundness rests on (``_stable_writes`` is): a
        write while a reader is pinned is where a joined read would be overtaken, so this
        finds the promotion in the first executions that write, instead of waiting for one
        in which the read happens to be in the reader's last step."""
        for s in fields:
            k = promoted_key(type(obj), s.name)
            if k in self.knowledge:
                continue
            for u in self.threads:
                if u.tid == tid:
                    continue
                try:
                    ok, _ = self._pinned(obj, s, u.name)
                except Exception as e:
                    self._set_finding(self.threads[tid], EXCEPTION, "exception",
                                      f"the pinned predicate of {obj.name}: {e!r}")
                    return
                if ok:
                    self.knowledge.learn(k)
                    break

    def _joined_key(self) -> int:
        """The fingerprint's part for the joined stable reads of fields that threads write
        or free (the others can never be written under a reader: learnt, stable.py)."""
        h = 0
        known = self.knowledge
        for (i, f), tids in self.joined.items():
            cls = type(self.objects[i])
            if written_key(cls, f) in known or written_key(cls, ALL_FIELDS) in known:
                for u in tids:
                    h ^= _joined_hash(u, (i, f))
        return h

    # ----------------------------------------------------------- guarded accesses
    def guarded_read(self, obj: Shared, g: Any) -> Any:
        """A read of a Guarded field (see shared.Guarded)."""
        if self.mode != _THREAD:
            return self.read(obj, g.name)
        how = self._guard(obj, g, READ)
        if how == _RIDE:
            return self._plain(READ, obj, g.name, None, race_check=False)
        return self._yield(self._guarded_op(Op(READ, obj, g.name), g, how))

    def guarded_write(self, obj: Shared, g: Any, value: Any) -> None:
        """A write of a Guarded field: the guard lock must be held."""
        if self.mode != _THREAD:
            self.write(obj, g.name, value)
            return
        how = self._guard(obj, g, WRITE)
        if how == _RIDE:
            self._plain(WRITE, obj, g.name, value, race_check=False)
        else:
            self._yield(self._guarded_op(Op(WRITE, obj, g.name, value), g, how))

    def _guarded_op(self, op: Op, g: Any, how: int) -> Op:
        """``op``, an access to Guarded field ``g`` that is a scheduling point: one the
        declaration forbids (``_BAD``) is the finding when it is performed, at its own
        step, as in a finer execution (not at the end of the step before it, which would
        cut off what other threads can do in between)."""
        if how == _BAD:
            t = self.running
            verb = ("reads", "writes", "updates")[op.kind]
            lock = getattr(op.obj, g.by)
            op.bad = (ASSERTION, "lock-guard",
                      f"{t.name if t is not None else 'a thread'} {verb} {op.obj.name}."
                      f"{g.name} without holding {lock.__dict__['_name']} (declared "
                      f"Guarded(by={g.by!r}" + (", lockless_reads=True" if g.lockless_reads
                                                else "") + "))"
                      + (_site(t) if t is not None else ""))
        return op

    def _guard(self, obj: Shared, g: Any, kind: int) -> int:
        """Whether a thread's access to the Guarded field ``g`` of ``obj`` rides along with
        its step (``_RIDE``), is a scheduling point (``_STEP``), or is one the declaration
        forbids (``_BAD``: the thread does not hold the lock; only its own steps could
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
            return _RIDE
        if held or (kind == READ and g.lockless_reads):
            return _STEP
        return _BAD

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
            self._uaf(t, Op(kind, obj, field, arg))
            raise _Halt
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
                raise _Halt
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
            where = _model_stack()
            self._traced.plain.append((_ACTION[kind], d["_name"], field, before, after,
                                       where[-1] if where else ""))
        return result

    def _received(self, t: ThreadState, value: Any) -> None:
        """``t`` received ``value`` from shared state: extend its history key."""
        if not self.hashable:
            return
        try:
            t.key = extend(t.key, value)
        except Unencodable as e:
            self.hashable = False
            self.unhashable = f"a value {t.name} read: {e}"

    def _race_finding(self, t: ThreadState, race: Race, kind: int, wait: str = "") -> None:
        obj = self.objects[race.key[0]]
        if wait:
            fn = f" in its wait_until({wait!r})"
        else:
            where = _model_stack()
            fn = f" in {where[-1]}" if where else ""
        other = self.threads[race.earlier_tid].name
        verb = "writes" if kind != READ else "reads"
        self._set_finding(
            t, DATA_RACE, DATA_RACE,
            f"data race on {obj.name}.{race.key[1]}: {t.name} {verb} it{fn} while "
            f"{other}'s earlier {race.earlier_kind} of it is not ordered before by any lock "
            "or marked access (make the field a Field if the race is intended)",
        )

    def _free_race(self, t: ThreadState, obj: Shared, race: Race) -> None:
        """``t`` frees ``obj`` while another thread's plain access to it is unordered."""
        op = t.op
        why = op.arg if op is not None else ""
        prop = USE_AFTER_FREE
        if isinstance(why, tuple):
            prop, why = why
        other = self.threads[race.earlier_tid].name
        self._set_finding(
            t, USE_AFTER_FREE, prop,
            f"{other} {race.earlier_kind}s {obj.name}.{race.key[1]} with nothing ordering "
            f"it before {t.name} frees it ({why or 'freed'}): in another interleaving the "
            "access comes after the free",
        )

    def rmw(self, obj: Shared, field: str, update: Callable[[Any], tuple[Any, Any]]) -> Any:
        """An atomic read-modify-write (one scheduling point)."""
        if self.mode == _THREAD:
            if self._is_plain(obj, field):
                return self._plain(RMW, obj, field, update)
            g = self._guard_of(obj, field)
            if g is None:
                return self._yield(Op(RMW, obj, field, update))
            how = self._guard(obj, g, RMW)
            if how == _RIDE:
                return self._plain(RMW, obj, field, update, race_check=False)
            return self._yield(self._guarded_op(Op(RMW, obj, field, update), g, how))
        new, result = update(obj.__dict__[field])
        self.write(obj, field, new)
        return result

    def acquire(self, lock: Shared) -> None:
        """Lock acquire by model code."""
        if self.mode != _THREAD:
            raise RuntimeError("a lock was taken outside a model thread (in build() or a "
                               "check): only a thread's code takes locks")
        self._yield(Op(ACQUIRE, lock, "owner"))

    def release(self, lock: Shared) -> None:
        """Lock release by model code."""
        if self.mode != _THREAD:
            raise RuntimeError("a lock was released outside a model thread (in build() or a "
                               "check): only a thread's code releases locks")
        self._yield(Op(RELEASE, lock, "owner"))

    def share(self, srcu: Shared, delta: int) -> None:
        """Enter (``delta`` 1) or leave (-1) an SRCU read-side section (sync.Srcu)."""
        if self.mode != _THREAD:
            raise RuntimeError("an SRCU read section was entered or left outside a model "
                               "thread (in build() or a check): only a thread's code can")
        self._yield(Op(ACQUIRE if delta > 0 else RELEASE, srcu, "readers"))

    def wait(self, cond: Callable[[], object], what: str, prop: str = "",
             grace: Shared | None = None) -> None:
        """Wait until ``cond()`` holds (a scheduling point; may block). ``grace``: the
        condition is ``synchronize_srcu`` of that Srcu (it reads its readers)."""
        if self.mode != _THREAD:
            raise RuntimeError("wait_until was called outside a model thread (in build() or "
                               "a check): only a thread's code can wait")
        op = Op(WAIT, _NOBODY, what, cond)
        op.grace = grace
        if prop:
            self.hang_props[what] = prop
        self._yield(op)

    def free(self, obj: Shared, why: str | tuple[str, str]) -> None:
        """Free a shared object (a scheduling point that conflicts with every access to it)."""
        if self.mode == _THREAD:
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
            progressed = joined or status != _STOPPED
            fp = fp + ofp
            if op.kind in (ACQUIRE, RELEASE) and status != _STOPPED and self._mover(op.obj):
                sections.setdefault(op.obj.__dict__["_idx"], []).append(op.kind)
            if status == _ABORT:
                return fp + tuple(self.plain_fp) + self._after_take(tid, taken, True)
            if status in (_STOPPED, _PASSED) or self.finding is not None:
                break
            movers = movers and op.kind == ACQUIRE and self._mover(op.obj) and not (
                self.unstable and (self.ghost_writes or any(w for _i, _f, w in self.plain_fp)))
            nxt = t.op
            if nxt is None or not self._joins(t, nxt, movers):
                break
            op = nxt
            joined = True
        if self.stale_wakes:
            if self.finding is None:
                self._wake_stale()
            else:  # the execution ends here: nobody steps again
                self.stale_wakes.clear()
        self._traced = None
        if sections and self.races is None:
            fp = _transient_sections(fp, sections)
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
            fp = (*fp, _OBSERVED)
        if self.finding is None and self.check_on:
            self._check_after(fp)
        else:
            self.ghost_writes = []
        if self.finding is None:
            self._check_end()
        return fp

    def _mover(self, obj: Shared) -> bool:
        """Whether ``obj``'s acquires and releases may join neighbouring operations: a mover
        Lock or an Srcu (whose owner or readers nothing but their own operations may read;
        reads elsewhere are errors, see ``_mover_read``)."""
        return self.movers and obj.__dict__.get(MOVER_FIELD) is not None

    def _joins(self, t: ThreadState, nxt: Op, movers: bool) -> bool:
        """Whether ``t``'s next operation ``nxt`` runs in the current step (Lipton's
        reduction: an acquire is a right mover, a release a left mover; what follows the
        right movers of a step must not block, so that deadlocks are kept)."""
        k = nxt.kind
        if k == RELEASE:  # (only a release that is no finding: one is its own step)
            d = nxt.obj.__dict__
            mine = t.name in d["readers"] if nxt.field == "readers" else d["owner"] == t.name
            return mine and self._mover(nxt.obj)
        if not movers:
            return False
        # Only an operation that can never block joins an acquire: one that is enabled now
        # may be disabled in the state where another thread ran first, and that state may
        # be a deadlock (AB-BA) the joined step would step over.
        return k not in (WAIT, ACQUIRE) or (k == ACQUIRE and nxt.field == "readers")

    def _perform(self, t: ThreadState, op: Op, joined: bool) -> tuple[Footprint, int]:
        """Perform ``op`` for ``t`` and run ``t`` on to its next operation.

        Returns the operation's footprint and whether ``t`` ran on (``_RAN``), stopped at a
        failed attempt (``_STOPPED``), or the step ends here without checks (``_ABORT``).
        """
        tid = t.tid
        obj = op.obj
        d = obj.__dict__
        k = op.kind
        if k == RESUME:  # the thread passed its wait in an earlier step: it runs on now
            self._received(t, RESUMED)  # its state after this differs from before it
            if self.log is not None:
                self.step_res[-1] += 1
            self._resume(t, op.arg)
            return (), _RAN
        if k == FAULT:  # the finding its initial run made (``_died``), at its first step
            made: Finding = op.arg
            self._set_finding(t, made.kind, made.prop, made.message)
            if self.finding is not None:
                self.finding.details = {**made.details, **self.finding.details}
            if self.trace_on:
                self.trace.append(TraceStep(
                    index=len(self.trace), thread=t.name, label=self.labels[-1],
                    where=op.where, action="fault", obj="", field=""))
            return (), _ABORT
        name = d["_name"]
        if op.bad is not None or (d["_freed"] is not None and k != WAIT):
            if op.bad is not None:  # an access the declaration forbids (_guarded_op)
                self._set_finding(t, *op.bad)
            else:
                self._uaf(t, op)
            if self.trace_on:  # the trace ends with the access that is the finding
                self.trace.append(TraceStep(
                    index=len(self.trace), thread=t.name,
                    label=self.labels[-1] if not joined else self.label(t.tid),
                    where=op.where, action=_action(k, op.field), obj=name, field=op.field,
                    before=d.get(op.field), after=None, joined=joined))
            return ((d["_idx"], op.field, k != READ),), _ABORT
        races = self.races
        if races is not None and k <= RMW:
            key = (d["_idx"], op.field)
            if k == READ:
                races.acquire(tid, key)
            else:
                if k == RMW:
                    races.acquire(tid, key)
                races.release(tid, key, rmw=k == RMW)
        before: Any = None
        failed = False
        resume = True
        result: Any = None
        fp: Footprint
        field = op.field
        if k == READ:
            result = d[field]
            fp = ((d["_idx"], field, False),)
            before = result
        elif k == WRITE:
            before = d[field]
            self._set(obj, name, field, op.arg)
            fp = ((d["_idx"], field, True),)
        elif k == RMW:
            before = d[field]
            fp = ((d["_idx"], field, True),)
            try:
                new, result = apply_update(op.arg, before, obj, field)
            except Exception as e:  # the model's update function: a finding, not a crash
                at = _model_frame(e) if not isinstance(e, UpdateError) else ""
                self._set_finding(t, EXCEPTION, "exception",
                                  f"{type(e).__name__}: {e} ({at or _site(t)[2:-1]})",
                                  tb=traceback.format_exc())
                return fp, _ABORT
            self._set(obj, name, field, new)
        elif k in (ACQUIRE, RELEASE) and field == "readers":  # Srcu read section
            before = d["readers"]
            if k == RELEASE and t.name not in before:
                self._set_finding(
                    t, ASSERTION, "lock-balance",
                    f"{t.name} left an SRCU read section of {name} it is not in{_site(t)}")
                return ((d["_idx"], "readers", True),), _ABORT
            self._set(obj, name, "readers", enter_section(before, t.name) if k == ACQUIRE
                      else leave_section(before, t.name))
            fp = ((d["_idx"], "readers", True),)
            if races is not None:
                races.acquire(tid, (d["_idx"], "readers"))
                races.release(tid, (d["_idx"], "readers"), rmw=True)
        elif k == ACQUIRE:
            before = d["owner"]
            if before is None:
                self._set(obj, name, "owner", t.name)
                fp = ((d["_idx"], "owner", True),)
                if races is not None:
                    races.acquire(tid, (d["_idx"], "owner"))
            else:
                failed = True
                fp = ((d["_idx"], "owner", False),)
                t.reads = fp
                self._block(t, ((d["_idx"], "owner"),))
                resume = False
        elif k == RELEASE:
            before = d["owner"]
            if before != t.name:
                self._set_finding(
                    t,
                    ASSERTION,
                    "lock-balance",
                    f"{t.name} released {name} held by {before or 'nobody'}{_site(t)}",
                )
                return ((d["_idx"], "owner", True),), _ABORT
            self._set(obj, name, "owner", None)
            fp = ((d["_idx"], "owner", True),)
            if races is not None:
                races.release(tid, (d["_idx"], "owner"))
        elif k == WAIT:
            ok, reads = self._eval_cond(t, op, attempt=True)
            if self.finding is not None:  # (the reads that made it: DPOR races them)
                return tuple((i, f, False) for i, f in sorted(reads)), _ABORT
            fp = tuple((i, f, False) for i, f in sorted(reads))
            t.reads = fp
            for i, f in sorted(reads):
                # the condition's reads: plain ones race-checked, marked ones acquire
                o = self.objects[i] if i >= 0 else None
                if races is None or o is None:
                    continue
                if f == "_freed":  # is_freed(o): the free released it (races.py)
                    races.acquire(tid, (i, "_freed"))
                elif self._is_plain(o, f):
                    race = races.plain_read(tid, (i, f))
                    if race is not None:
                        self._race_finding(t, race, READ, wait=op.field)
                        return fp, _ABORT
                else:
                    races.acquire(tid, (i, f))
            if not ok:
                failed = True
                resume = False
                self._block(t, reads)
            before = ok
        else:  # FREE
            fp = ((d["_idx"], ALL_FIELDS, True),)
            if self.movers and type(obj)._has_guarded_:
                # guarded accesses of this class rode along after writes on the premise
                # that no thread frees such an object (_guard): from now on they do not
                self.knowledge.learn(freed_key(type(obj)))
            if d.get(MOVER_FIELD) is not None and self.movers:
                # a release joins the step before it on the premise that nothing but lock
                # operations touches the lock in between; a free would, and could then
                # be enabled by that very step and missed
                self._set_finding(
                    t, EXCEPTION, "exception",
                    f"{t.name} frees {name}, a mover lock or Srcu (its operations join the "
                    "steps next to them, which a free in between would split): declare it "
                    f"Lock({name!r}, mover=False) if the model frees it{_site(t)}")
                return fp, _ABORT
            if races is not None and type(obj)._has_plain_:
                keys = [(d["_idx"], f) for f in type(obj)._fields_ if self._is_plain(obj, f)]
                race = races.free(tid, keys)
                if race is not None:
                    self._free_race(t, obj, race)
                    return fp, _ABORT
            if self.log is not None:
                self.log.append((d, "_freed", None, op.arg or "freed"))
            d["_freed"] = op.arg or "freed"
            self._zob(name, "_freed", op.arg or "freed")
            if races is not None:
                races.release(tid, (d["_idx"], "_freed"))
            self._wake_object(d["_idx"])
        if self.trace_on:
            label = self.labels[-1] if not joined else self.label(tid)
            after = d.get(field) if k in (WRITE, RMW, ACQUIRE, RELEASE) else None
            self.trace.append(
                TraceStep(
                    index=len(self.trace),
                    thread=t.name,
                    label=label,
                    where=op.where,
                    action=_action(k, field),
                    obj=name if k != WAIT else "",
                    field=field,
                    before=before,
                    after=after,
                    failed_attempt=failed,
                    joined=joined,
                    reads=tuple(f"{self.objects[i].__dict__['_name']}.{f}"
                                for i, f, _w in fp) if k == WAIT else (),
                )
            )
            self._traced = self.trace[-1]
        if not resume:
            return fp, _STOPPED
        if k in (WRITE, RMW, RELEASE, FREE):  # (an srcu_read_lock can only disable)
            self.enabling = True
        self._received(t, result)
        if self.log is not None:
            self.step_res[-1] += 1
        if k == WAIT:
            self._passed(t, op, result)
            return fp, _PASSED
        self._resume(t, result)
        return fp, _RAN

    def _passed(self, t: ThreadState, op: Op, value: Any) -> None:
        """``t`` passed wait ``op``: its step ends here, and its next one (``RESUME``) runs
        the code after the wait. So the wait step's footprint is its condition's reads
        whether it passes or not, which is what a blocked waiter's pending step shows the
        race checks (docs/reductions.md section 2, "a passing wait ends its step")."""
        self._unwatch(t)
        nxt = Op(RESUME, _NOBODY, op.field, value)
        nxt.where = op.where
        t.op = nxt
        t.reads = ()
        t.value = True

    # ------------------------------------------------------------------ internals
    def _set(self, obj: Shared, name: str, field: str, value: Any) -> None:
        d = obj.__dict__
        if self.replaying:  # a rebuilt thread's code re-runs (snapshot.py)
            d[field] = value
            return
        old = d[field]
        d[field] = value
        if self.log is not None:
            self.log.append((d, field, old, value))
        self._zob(name, field, old)
        self._zob(name, field, value)
        w = self.watch.get((d["_idx"], field))
        if w:
            self._wake(w)

    def _wake_object(self, idx: int) -> None:
        tids: set[int] = set()
        for (i, _f), w in self.watch.items():
            if i == idx:
                tids |= w
        if tids:
            self._wake(tids)

    def _wake(self, tids: set[int]) -> None:
        """Re-check the pending attempts of threads watching a field that was just written."""
        for tid in sorted(tids):
            t = self.threads[tid]
            op = t.op
            if op is None:
                continue
            if t.stale and op.kind != ACQUIRE:
                # its condition is a closure over frames it no longer has: re-checked once
                # it is rebuilt, at the end of this step (``_wake_stale``)
                self.stale_wakes.add(tid)
                continue
            if op.kind == ACQUIRE:
                if op.obj.__dict__.get("owner") is None:
                    t.blocked = False
                    t.value = True
                    self._unwatch(t)
                continue
            ok, reads = self._eval_cond(t, op)
            t.value = ok
            t.reads = tuple((i, f, False) for i, f in sorted(reads))
            self._unwatch(t)
            self._watch(t, reads)
            if ok:
                t.blocked = False

    def _wake_stale(self) -> None:
        """Rebuild the stale waiters this step woke and re-check their conditions. Checking
        at the end of the step gives what checking at each write would: a condition is a
        function of the fields it reads, and every write to them since the last check
        woke it again (docs/reductions.md section 10)."""
        tids = sorted(self.stale_wakes)
        self.stale_wakes.clear()
        for tid in tids:
            t = self.threads[tid]
            if t.op is None:
                continue
            if t.stale:
                self.rebuild(t)
            self._wake({tid})

    def _block(self, t: ThreadState, reads: Any) -> None:
        t.blocked = True
        t.value = False
        self._unwatch(t)
        self._watch(t, reads)

    def _watch(self, t: ThreadState, reads: Any) -> None:
        for key in reads:
            self.watch.setdefault(key, set()).add(t.tid)
            t.watched.append(key)

    def _unwatch(self, t: ThreadState) -> None:
        for key in t.watched:
            self.watch[key].discard(t.tid)
        t.watched.clear()

    def _eval_cond(self, t: ThreadState, op: Op, attempt: bool = False
                   ) -> tuple[bool, set[tuple[int, str]]]:
        """Evaluate wait ``op``'s condition for ``t``: whether it holds, and what it read.

        A condition that is a finding (it raises, reads freed memory, reads a Guarded field
        or a mover lock's owner) is reported at the wait's ``attempt``, its own step, as in
        a finer execution; evaluated when the thread reaches the wait or a write wakes it,
        it only makes the thread runnable, so that the attempt comes."""
        reads: set[tuple[int, str]] = set()
        prev_mode, prev_peek = self.mode, self.peek
        self.mode, self.peek = _PEEK, reads
        prev = HOOKS.current
        HOOKS.current = self
        problem: tuple[str, str, str] | None = None
        ok = False
        try:
            ok = bool(op.arg())
        except Exception as e:  # a broken condition is a finding, not a crash of the tool
            at = _model_frame(e)
            problem = (EXCEPTION, "exception", f"condition of wait {op.field!r}: {e!r}"
                       + (f" ({at})" if at else ""))
        finally:
            self.mode, self.peek = prev_mode, prev_peek
            HOOKS.current = prev
        if problem is None:
            problem = self._cond_problem(t, op, reads)
        if op.grace is not None:  # synchronize_srcu: its own read of the readers
            reads.add((op.grace.__dict__["_idx"], "readers"))
        if problem is None:
            return ok, reads
        if attempt:
            self._set_finding(t, *problem)
        return not attempt, reads

    def _cond_problem(self, t: ThreadState, op: Op, reads: set[tuple[int, str]]
                      ) -> tuple[str, str, str] | None:
        """The finding a wait condition that read ``reads`` is, if any (``_eval_cond``)."""
        for i, f in reads:
            why = self.objects[i].__dict__["_freed"] if i >= 0 and f != "_freed" else None
            if why is not None:  # the waiter polls freed memory (is_freed() itself may ask)
                prop = USE_AFTER_FREE
                if isinstance(why, tuple):
                    prop, why = why
                return (USE_AFTER_FREE, prop, f"{t.name} waits on {self.objects[i].name}.{f} "
                        f"after it was freed ({why}){_site(t)}")
        bad = self._mover_reads(reads)
        if bad:
            return (EXCEPTION, "exception",
                    _mover_read(*bad, f"the condition of wait {op.field!r}"))
        for i, f in reads:
            g = self._guard_of(self.objects[i], f) if i >= 0 else None
            if g is not None and not g.lockless_reads:
                name = self.objects[i].name
                return (ASSERTION, "lock-guard",
                        f"the condition of wait {op.field!r} reads {name}.{f} without "
                        f"holding its lock (declared Guarded(by={g.by!r})): a waiter is a "
                        "lockless reader; declare lockless_reads=True")
        return None

    def _mover_reads(self, reads: set[tuple[int, str]]) -> tuple[Shared, str] | None:
        """A read of a mover lock's owner or an Srcu's readers among ``reads``, if any."""
        for i, f in reads:
            if i >= 0 and f in ("owner", "readers"):
                obj = self.objects[i]
                if obj.__dict__.get(MOVER_FIELD) == f:
                    return obj, f
        return None

    def _switch(self, t: ThreadState, value: Any) -> Any:
        """Run thread ``t``'s code from where it is suspended, handing it ``value``, until
        it yields its next operation (returned) or ends; what it raises propagates."""
        prev = HOOKS.current
        HOOKS.current = self
        self._main = greenlet.getcurrent()
        self.mode = _THREAD
        self.running = t
        try:
            return t.glet.switch(value)
        finally:
            self.mode = _SCHED
            HOOKS.current = prev

    def _resume(self, t: ThreadState, value: Any) -> None:
        try:
            nxt = self._switch(t, value)
        except _Halt:  # a plain access was a finding (race, use after free); already set
            self._died(t)
            return
        except ModelViolation as e:
            self._set_finding(t, ASSERTION, e.prop, e.message)
            self._died(t)
            return
        except AssertionError as e:
            msg = str(e) or _where_failed(e)
            at = _model_frame(e)
            self._set_finding(t, ASSERTION, "assertion",
                              f"{msg} ({at})" if at and str(e) else msg)
            self._where(at)
            self._died(t)
            return
        except Exception as e:
            at = _model_frame(e)
            self._set_finding(
                t, EXCEPTION, "exception",
                f"{type(e).__name__}: {e}" + (f" ({at})" if at else ""),
                tb=traceback.format_exc()
            )
            self._where(at)
            self._died(t)
            return
        self._unwatch(t)
        if t.glet.dead:
            t.op = None
            t.key = _DONE
            t.reads = ()
            t.value = False
            return
        t.op = nxt
        if nxt.kind == WAIT:
            ok, reads = self._eval_cond(t, nxt)
            t.value = ok
            t.reads = tuple((i, f, False) for i, f in sorted(reads))
            self._watch(t, reads)
        else:
            # what an earlier attempt left is no part of the thread's state (a step from
            # the same state must leave the same bookkeeping: stepmemo.py)
            t.reads = ()
            t.value = nxt.kind != ACQUIRE or nxt.obj.__dict__.get("owner") is None

    def _died(self, t: ThreadState) -> None:
        """``t``'s code ended in the execution's finding. Made in its initial run, before
        its first step, the finding is that step (``FAULT``), as in a finer execution:
        other threads may run first. (Halting the execution in its initial state cut them
        off: a data race on the Plain fields the initial run had touched went unseen.)"""
        f = self.finding
        if self.starting and f is not None and not self.replaying:
            self.finding = None
            t.op = Op(FAULT, _NOBODY, "", f)
            t.reads = ()
            t.value = True
            return
        t.op = None

    def _where(self, at: str) -> None:
        """Record where in the model code the halting finding was raised (``details``)."""
        if at and self.finding is not None:
            self.finding.details.setdefault("where", at)

    def _uaf(self, t: ThreadState, op: Op) -> None:
        d = op.obj.__dict__
        why = d["_freed"]
        prop = USE_AFTER_FREE
        if isinstance(why, tuple):
            prop, why = why
        self._set_finding(
            t,
            USE_AFTER_FREE,
            prop,
            f"{t.name} {op.describe()} after it was freed ({why})",
        )

    def thread_names(self) -> list[str]:
        """Names of the threads, indexed by tid."""
        return [t.name for t in self.threads]

    def tid_of(self, name: str) -> int:
        """The tid of the thread called ``name``."""
        for t in self.threads:
            if t.name == name:
                return t.tid
        raise KeyError(name)

    def close(self) -> None:
        """Abandon the execution, ending its thread greenlets."""
        for t in self.threads:
            if not t.glet.dead:
                with contextlib.suppress(Exception):
                    t.glet.throw(greenlet.GreenletExit)
        self.threads = []


#: the hash of each program's initial state (and whether it hashes), with its object count
_INIT_ZOB: weakref.WeakKeyDictionary[Program, tuple[int, bool, str, int]] = \
    weakref.WeakKeyDictionary()

#: ops_key results by program, then by (thread key at the operation's start, index)
_OPS_MEMO: weakref.WeakKeyDictionary[Program, dict[tuple[int, int], int | None]] = \
    weakref.WeakKeyDictionary()


def _joined_hash(tid: int, key: tuple[int, str]) -> int:
    """The contribution of one joined-read record to the state's fingerprint."""
    return digest(repr((tid, *key)).encode())


class _Halt(BaseException):
    """Unwinds a model thread whose plain access was a finding (not an ``Exception``, so
    model code cannot catch it)."""


class _Nobody(Shared):
    """Placeholder object for waits (their footprint is the condition's read set)."""


_NOBODY = _Nobody.__new__(_Nobody)
_NOBODY.__dict__.update(_name="<wait>", _freed=None, _idx=-1)


def _mover_read(obj: Shared, field: str, who: str) -> str:
    """The error for a read of a mover primitive's state outside its own operations."""
    name = obj.__dict__["_name"]
    if field == "owner":
        return (f"{who} reads who holds lock {name}, a mover lock (its acquire joins the next "
                "access, so no other thread can see it held in between): declare it "
                f"Lock({name!r}, mover=False) to make its lock operations steps of their own")
    return (f"{who} reads {name}.readers: only {name}.synchronize() may wait on an Srcu's "
            "readers; use a Field counter and wait_until for another condition")


def _model_stack() -> tuple[str, ...]:
    """Names of the model functions on the current thread's stack, outermost first."""
    f = sys._getframe(2)
    names: list[str] = []
    while f is not None:
        code = f.f_code
        if code.co_name == "run" and code.co_filename in _ENGINE_FILES:
            break
        if code.co_filename not in _ENGINE_FILES:
            names.append(_CODE_NAMES.get(code, code.co_name))
        f = f.f_back  # type: ignore[assignment]
    names.reverse()
    return tuple(names)


def model_caller(skip: Collection[str] = ()) -> str:
    """The innermost *named* function (see :func:`name_code`: the model's kernel functions
    and their overrides, under the kernel name) on the running thread's stack whose file is
    not in ``skip``, or "" if there is none: who called the primitive that asks (a ledger
    hook names the kernel function that put a page, not a helper of it)."""
    f: Any = sys._getframe(1)
    while f is not None:
        code = f.f_code
        name = _CODE_NAMES.get(code)
        if name is not None and code.co_filename not in skip:
            return name
        f = f.f_back
    return ""


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


def _site(t: ThreadState) -> str:
    """`` (in FUNCTION, FILE:LINE)``: where thread ``t``'s code is (suspended at its pending
    operation, or running now), or "" when that is not in a model file."""
    f: Any = sys._getframe(1) if t.glet is greenlet.getcurrent() else t.glet.gr_frame
    while f is not None:
        code = f.f_code
        if code.co_filename not in _ENGINE_FILES and not code.co_filename.startswith("<"):
            return f" (in {_CODE_NAMES.get(code, code.co_name)}, " \
                f"{_shown(code.co_filename)}:{f.f_lineno})"
        f = f.f_back
    return ""


def _shown(path: str) -> str:
    """``path`` relative to the working directory when under it."""
    import os

    rel = os.path.relpath(path) if os.path.isabs(path) else path
    return rel if not rel.startswith("..") else path


def _model_frame(e: BaseException) -> str:
    """``in FUNCTION, FILE:LINE`` of the innermost traceback frame in model code (not the
    engine's), the file relative to the working directory when under it; "" if none."""
    for fr in reversed(traceback.extract_tb(e.__traceback__)):
        if fr.filename in _ENGINE_FILES or fr.filename.startswith("<"):
            continue
        return f"in {fr.name}, {_shown(fr.filename)}:{fr.lineno}"
    return ""


def _where_failed(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    if tb:
        fr = tb[-1]
        return f"assertion failed in {fr.name} ({fr.filename.rsplit('/', 1)[-1]}:{fr.lineno})"
    return "assertion failed"
