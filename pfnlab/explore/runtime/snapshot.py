"""Checkpoints of an execution: going back to an earlier state without re-executing.

A stateless search goes back to a state on its stack by re-executing the schedule that led
there from the initial state, every thread's code included: at `devdax-unbind` 2 x 2 that
was over 90 % of the steps run (about 12 re-executed steps per new state). Threads live in
greenlets, which cannot be copied, so the state cannot be forked. Instead
(:class:`Snapshots`, a layer of :class:`~pfnlab.explore.runtime.Execution`):

- every change of shared state (a field, a ghost field, a free) is appended to an *undo
  log* ``(object dict, field, old value, new value)``; a :class:`Checkpoint` is the log's
  length plus the engine's small per-state bookkeeping (thread keys, pending operations,
  blocked flags, the checks' read sets, the findings noted so far);
- :meth:`Snapshots.restore` undoes the log back to a checkpoint and puts the bookkeeping
  back. The greenlets of the threads that stepped since the checkpoint are now ahead of the
  state: they are marked *stale*;
- a stale thread is rebuilt when it is next needed (it takes a step, or a write wakes its
  pending wait: then at the end of that step): a fresh greenlet runs *that thread's code
  only*, against the
  recorded history. The state is rewound to the start of the log and replayed forward one
  recorded step at a time: the rebuilt thread's own steps run its code (performing each
  operation it yields, as often as the step resumed it), every other thread's steps are
  re-applied from the log as data. The thread therefore reads exactly what it read the
  first time (fields, ghost fields, ``__dict__`` reads, ``is_freed``), and ends suspended
  at the same operation with the same history key; both are checked, and a mismatch (a
  thread that is not deterministic) is an error, never a silent wrong state.

So a new state costs its own step plus, per stale thread that is stepped again, that
thread's code (other threads' steps are dictionary writes). Nothing about the state a
search sees changes: the restored state is the state re-execution reaches (the tests
compare both on random programs and the built-in scenarios, field by field, key by key).

Checkpoints are off (``snapshots_ok()`` is False, and searches re-execute as before) when
the race detector runs (its vector clocks are not logged) or a thread creates a shared
object (a rebuilt thread would create a second one).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, NamedTuple

import greenlet

from pfnlab.explore.runtime import frees, locks
from pfnlab.explore.runtime.joined import JoinedReads
from pfnlab.explore.runtime.ops import ACQUIRE, FREE, READ, RELEASE, RESUME, RMW, WAIT, WRITE
from pfnlab.explore.runtime.sites import site

if TYPE_CHECKING:
    from pfnlab.explore.runtime.threads import ThreadState


class Checkpoint(NamedTuple):
    """What :meth:`Snapshots.restore` needs to put an execution back to one state."""

    pos: int                       # undo-log length
    nsteps: int
    zob: int
    hashable: bool
    unhashable: str
    finished: bool
    nnoted: int
    inv_false: frozenset[int]
    inv_reads: tuple[Any, ...]
    goal_reads: tuple[Any, ...]
    #: stable reads joined to their threads' last steps (runtime.Execution.joined)
    joined: dict[tuple[int, str], tuple[int, ...]]
    #: per thread: key, depth, op, blocked, value, reads, watched
    threads: tuple[tuple[Any, ...], ...]


class _Sink:
    """The runtime a discarded greenlet unwinds under: any shared access ends it at once,
    so ``finally`` blocks in model code cannot change the state."""

    def __getattr__(self, name: str) -> Any:
        raise greenlet.GreenletExit


_SINK = _Sink()
_NONE: frozenset[int] = frozenset()
_NOJOINED: dict[tuple[int, str], tuple[int, ...]] = {}


class Snapshots(JoinedReads):
    """Undo log, checkpoints and thread rebuilding (see the module docstring)."""

    # ------------------------------------------------------------------ the log
    def snapshots_ok(self) -> bool:
        """Whether :meth:`checkpoint` and :meth:`restore` can be used."""
        return self.log is not None

    def snapshots_off(self, why: str) -> None:
        """Turn checkpoints off for the rest of this execution."""
        if self.log is not None:
            self.log = None
            self.no_snapshots = why

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self) -> Checkpoint:
        """The current state, to come back to with :meth:`restore`."""
        assert self.log is not None and self.finding is None
        return Checkpoint(
            len(self.log), self.nsteps, self.zob, self.hashable, self.unhashable,
            self.finished, len(self.noted),
            frozenset(self.inv_false) if self.inv_false else _NONE,
            tuple(self.inv_reads), tuple(self.goal_reads),
            dict(self.joined) if self.joined else _NOJOINED,
            tuple([(t.key, t.depth, t.op, t.blocked, t.value, t.reads,
                    tuple(t.watched) if t.watched else ()) for t in self.threads]))

    def restore(self, cp: Checkpoint) -> None:
        """Go back to the state of ``cp``, taken earlier in this execution (the state now
        must be a descendant of it: nothing before it was undone since)."""
        log = self.log
        assert log is not None and cp.pos <= len(log) and cp.nsteps <= self.nsteps
        for i in range(len(log) - 1, cp.pos - 1, -1):
            d, f, old, _new = log[i]
            d[f] = old
        del log[cp.pos:]
        moved = set(self.schedule[cp.nsteps:])
        del self.schedule[cp.nsteps:]
        del self.step_pos[cp.nsteps:]
        del self.step_res[cp.nsteps:]
        self.nsteps = cp.nsteps
        self.zob, self.hashable, self.unhashable = cp.zob, cp.hashable, cp.unhashable
        self.finished = cp.finished
        self.finding = None
        del self.noted[cp.nnoted:]
        self.noted_keys = {f.key for f in self.noted}
        self.inv_false = set(cp.inv_false)
        self.inv_reads = list(cp.inv_reads)
        self.goal_reads = list(cp.goal_reads)
        self.joined = dict(cp.joined) if cp.joined else {}
        self.ghost_writes = []
        self.watch = {}
        for t, (key, depth, op, blocked, value, reads, watched) in zip(
                self.threads, cp.threads, strict=True):
            t.key, t.depth, t.op, t.blocked, t.value, t.reads = \
                key, depth, op, blocked, value, reads
            t.watched = list(watched)
            for w in watched:
                self.watch.setdefault(w, set()).add(t.tid)
            if t.tid in moved:
                t.stale = True
            starts = t.opstarts
            while starts and starts[-1][0] >= cp.nsteps:
                starts.pop()
        # (a stale thread's pending wait is re-checked once a write wakes it: the step
        # rebuilds it then, see Execution._wake_stale)
        self.stale_wakes = set()

    # ------------------------------------------------------------------ rebuilding
    def rebuild(self, t: ThreadState) -> None:
        """Give stale thread ``t`` a greenlet at its position in the current state, by
        re-running its code against the recorded history (module docstring), from the start
        of the operation it is in when it is a list of operations."""
        log = self.log
        assert log is not None and self.finding is None
        saved = (t.key, t.depth, t.op, t.blocked, t.value, t.reads, list(t.watched),
                 self.zob, self.hashable, self.unhashable, self.enabling)
        # what the step this rebuild may run in has gathered so far (``_wake_stale``)
        step_state = (self.plain_fp, self.ghost_writes, self.running)
        self.plain_fp, self.ghost_writes = [], []
        self._discard(t)
        tid = t.tid
        n = len(log)
        nthreads = len(self.threads)
        nsteps = len(self.schedule)

        def bounds(seg: int) -> tuple[int, int]:
            """Log range of segment ``seg``: initial runs -nthreads..-1, then the steps."""
            if seg < 0:
                k = seg + nthreads
                lo = self.init_pos[k]
                hi = self.init_pos[k + 1] if k + 1 < nthreads else (
                    self.step_pos[0] if nsteps else n)
                return lo, hi
            return self.step_pos[seg], self.step_pos[seg + 1] if seg + 1 < nsteps else n

        if t.opstarts:  # the operation it is in started in step (or initial run) ``s0``
            s0, pos, index, key, enabling, done = t.opstarts[-1]
            seg0 = s0 if s0 >= 0 else tid - nthreads
        else:
            seg0, index, key, enabling, done = tid - nthreads, 0, _initial_key(t.name), \
                False, 0
            pos = bounds(seg0)[0]
        for i in range(n - 1, pos - 1, -1):  # rewind to where it starts again
            d, f, old, _new = log[i]
            d[f] = old
        t.glet = greenlet.greenlet(self._trampoline(self.bodies[tid], index))
        t.key, t.depth, self.enabling = key, 0, enabling
        t.op = saved[2] if seg0 >= 0 else None  # (what call summaries see)
        self.replaying = True
        try:
            self.starting = seg0 < 0
            try:
                self._replay_resume(t, None)
            finally:
                self.starting = False
            if seg0 >= 0:
                for _ in range(self.step_res[seg0] - done):
                    self._replay_op(t)
            cur = bounds(seg0)[1]
            _redo(log, pos, cur)
            self.rebuilt_steps += 1
            schedule, step_res = self.schedule, self.step_res
            for seg in range(max(seg0 + 1, 0), nsteps):
                if schedule[seg] != tid:
                    continue
                lo, hi = bounds(seg)
                _redo(log, cur, lo)  # every other thread's steps since, as data
                self.enabling = False
                for _ in range(step_res[seg]):
                    self._replay_op(t)
                self.rebuilt_steps += 1
                _redo(log, lo, hi)
                cur = hi
            _redo(log, cur, n)
        finally:
            self.replaying = False
        (key, depth, op, t.blocked, t.value, t.reads, t.watched,
         self.zob, self.hashable, self.unhashable, self.enabling) = saved
        new = t.op
        if new is None or op is None or (new.kind, new.obj.__dict__["_name"], new.field) \
                != (op.kind, op.obj.__dict__["_name"], op.field) or (
                self.hashable and (t.key, t.depth) != (key, depth)):
            raise RuntimeError(
                f"thread {t.name} is not deterministic: re-run against the same history it "
                f"stopped at {new.describe() if new is not None else 'its end'}"
                f"{site(t)} instead of "
                f"{op.describe() if op is not None else 'its end'}; model threads may "
                "depend only on what they read from shared state (not on a global, the "
                "clock, random numbers or a value kept from an earlier execution)")
        t.key, t.depth = key, depth
        t.stale = False
        self.plain_fp, self.ghost_writes, self.running = step_state
        self.rebuilds += 1

    def _replay_op(self, t: ThreadState) -> None:
        """Perform ``t``'s pending operation as it was performed the first time (it
        succeeded: the step resumed the thread) and run ``t`` on to its next one."""
        op = t.op
        assert op is not None
        d = op.obj.__dict__
        k = op.kind
        f = op.field
        result: Any = None
        if k == RESUME:  # the code after a wait passed in an earlier step
            self._received(t, RESUMED)
            self._replay_resume(t, op.arg)
            return
        if k == WAIT:  # it passed: the step ended there (waits.passed)
            self._received(t, None)
            self._passed(t, op, None)
            return
        if k == READ:
            result = d[f]
        elif k == WRITE:
            d[f] = op.arg
        elif k == RMW:
            new, result = op.arg(d[f])
            d[f] = new
        elif k in (ACQUIRE, RELEASE):
            locks.replay(t, op)
        elif k == FREE:
            frees.replay(op)
        if k in (WRITE, RMW, RELEASE, FREE):
            self.enabling = True
        self._received(t, result)
        self._replay_resume(t, result)

    def _replay_resume(self, t: ThreadState, value: Any) -> None:
        nxt = self._switch(t, value)
        t.op = None if t.glet.dead else nxt

    def _discard(self, t: ThreadState) -> None:
        """End ``t``'s stale greenlet without letting its unwinding touch the state."""
        from pfnlab.explore.shared import HOOKS

        old = t.glet
        if old.dead or not old:
            return
        prev = HOOKS.current
        HOOKS.current = _SINK
        depth = t.depth
        try:
            # what the unwinding model code raises is of no interest (a Ctrl-C is: it
            # must reach the search, which reports what it covered)
            with contextlib.suppress(Exception, greenlet.GreenletExit):
                old.throw(greenlet.GreenletExit)
        finally:
            HOOKS.current = prev
            t.depth = depth


def _redo(log: list[tuple[dict[str, Any], str, Any, Any]], lo: int, hi: int) -> None:
    for i in range(lo, hi):
        d, f, _old, new = log[i]
        d[f] = new


def _initial_key(name: str) -> int:
    from pfnlab.explore.fingerprint import digest

    return digest(name.encode())


#: what a thread's history records for a RESUME step (it receives no value): its key after
#: the step differs from its key at the RESUME, as after any step that runs code
RESUMED = ("<resumed after a wait>",)
