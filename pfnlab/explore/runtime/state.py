"""The state of one execution: every attribute the layers of the runtime share, in one place.

An execution is built in layers, each a class on the one below, each in its own file:

- :class:`State` (here): the attributes, the registry of shared objects, the state's
  incremental hash, ghost writes, and what a thread received;
- :class:`~pfnlab.explore.runtime.checks.Checking`: invariants, goals, final checks, hangs
  and the findings they make;
- :class:`~pfnlab.explore.runtime.running.Running`: threads in greenlets, switching to and
  from them, writing a field;
- :class:`~pfnlab.explore.runtime.joined.JoinedReads`: stable reads joined to a step, and
  the promotions a write makes;
- :class:`~pfnlab.explore.runtime.snapshot.Snapshots`: the undo log, checkpoints, rebuilding
  stale threads;
- :class:`~pfnlab.explore.runtime.stepmemo.StepMemo`: applying a step's recorded outcome;
- :class:`~pfnlab.explore.runtime.execution.Execution`: the primitives model code calls and
  the interface strategies drive.

Every attribute is set here, once, so that a layer never declares what another owns.
"""

from __future__ import annotations

from typing import Any

import greenlet

from pfnlab.explore.findings import (
    Finding,
    TraceStep,
)
from pfnlab.explore.fingerprint import Unencodable, extend, field_key
from pfnlab.explore.knowledge import ALLOCATES, Knowledge
from pfnlab.explore.program import Instance, Program
from pfnlab.explore.races import RaceDetector
from pfnlab.explore.runtime.ops import (
    SCHED,
)
from pfnlab.explore.runtime.threads import ThreadState
from pfnlab.explore.shared import Shared, guard_of, is_plain
from pfnlab.explore.threadstate import Statics


class State:
    """The attributes of an execution (set by :meth:`__init__`, the program built later by
    :class:`~pfnlab.explore.runtime.execution.Execution`)."""

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
        self.mode = SCHED
        self.peek: set[tuple[int, str]] | None = None
        self.hashable = True
        self.unhashable = ""             # why state caching is off, if it is
        self.statics: Statics | None = None  # set-up objects (threadstate.py)
        self.zob = 0
        self.nsteps = 0
        self.finding: Finding | None = None   # the halting finding (runtime/checks.py)
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
        # set by Execution when the program is built
        self.instance = Instance(threads={})
        self.threads: list[ThreadState] = []
        self.bodies: list[Any] = []
        self.unstable = False
        self.inv_reads: list[set[tuple[int, str]]] = []
        self.goal_reads: list[set[tuple[int, str]]] = []


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
        if self.mode != SCHED or self.nsteps:
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

    def note(self, note: object) -> None:
        """Trace mode: attach ``note`` (a text, or a record whose ``str()`` is one) to the
        step after which the running thread goes on."""
        if self._traced is not None:
            self._traced.notes.append(note)

    def threads_started(self) -> bool:
        """Whether set-up is over (threads exist)."""
        return bool(getattr(self, "threads", None))

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

    def _received(self, t: ThreadState, value: Any) -> None:
        """``t`` received ``value`` from shared state: extend its history key."""
        if not self.hashable:
            return
        try:
            t.key = extend(t.key, value)
        except Unencodable as e:
            self.hashable = False
            self.unhashable = f"a value {t.name} read: {e}"
