"""Step memo: a thread's step from a state it has stepped from before is not run again.

With checkpoints (snapshot.py) a search goes back to a node of its stack and runs a thread
that has stepped since: that thread is *stale* and must be rebuilt, its code re-run from the
start of its operation, before it can take the step. At ``devdax-unbind`` 3 x 1 that was
one rebuild per execution and over half of the search's time. Yet most such steps were
taken before from the same state: the state at a DPOR node differs from the state at the
node below it mostly in *other* threads' history keys (a read changes no field).

A step is a deterministic function of the stepping thread's state (its history key and
summarised-call depth: threads are deterministic, the premise of state caching and of
rebuilds) and of the shared state it runs in: every field, ghost field and free flag,
whose 128-bit Zobrist hash (``zob``) the execution keeps anyway, and the promotions made
so far (what a write of a stable field promotes is decided after the step, from the
stable reads other threads' last steps joined: stable.py). So the *outcome* of a step, as
recorded the first time it runs, can be applied again wherever the same key comes back:

- the writes in the order made, each through the primitive that made it (``_set`` for a
  field, which wakes the watchers of the field in the intermediate state it leaves, as the
  first run did; ``ghost_write``; a free), so the undo log, the Zobrist hash and the other
  threads' wake-ups are those of a real step;
- the thread's new bookkeeping: history key, depth, pending operation (the first run's
  ``Op``, as :meth:`~pfnlab.explore.runtime.snapshot.Snapshots.restore` puts back), blocked flag,
  attempt result, watched fields, operation starts (moved to this log position), and how
  often the step resumed it, so that a later rebuild re-runs exactly this step;
- the step's footprint (ghost writes are added as in a real step), and the stable reads
  it joined (stable.py: a later write of one by another thread promotes it).

The thread's greenlet is not moved, so the thread is stale afterwards; a later rebuild
re-runs its code against the log, which holds what the real step would have written, and
checks that it ends at the recorded operation with the recorded key: a wrong outcome would
be reported there as a non-deterministic thread, never silently explored. What follows a
step (invariants, goals, the visibility proviso, the end-of-execution checks, stale waiters
the writes woke) runs as after any step.

Only outcomes of plain steps are recorded: no finding, no non-halting finding, no stable
field promoted, the state still hashable; never with a trace or the race detector (whose
clocks are not in the undo log; checkpoints are off then anyway). A finding raised while an
outcome is applied (a woken waiter's condition failing) undoes it, and the step runs for
real. The memo belongs to one execution (its objects and ``Op`` s are that execution's) and
is bounded (:data:`MEMO_LIMIT` entries, then it stops growing). docs/reductions.md
section 13 has the argument and what tests it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from pfnlab.explore.runtime import blocking, waits
from pfnlab.explore.runtime.snapshot import Snapshots
from pfnlab.explore.shared import Ghost, Shared

if TYPE_CHECKING:
    from pfnlab.explore.runtime.threads import ThreadState

#: entries one execution's memo may hold (about 1 KB each); beyond it steps run as before
MEMO_LIMIT = 2_000_000

_FIELD, _GHOST, _FREE = range(3)


class StepOutcome(NamedTuple):
    """What one step did, to be done again without running the thread's code."""

    res: int                                       # how often the step resumed the thread
    writes: tuple[tuple[Shared, str, Any, int], ...]  # object, field, new value, kind
    op: Any                                        # the pending operation after it
    key: int
    depth: int
    blocked: bool
    value: bool
    reads: tuple[Any, ...]
    watched: tuple[tuple[int, str], ...]
    #: operation starts made in the step: (log offset, index, key, enabling, resumes before)
    opstarts: tuple[tuple[int, int, int, bool, int], ...]
    enabling: bool
    fp: tuple[Any, ...]                            # the footprint before ghost writes
    #: the stable reads it joined (runtime.Execution._join_record)
    joined: tuple[tuple[int, str], ...]


class StepMemo(Snapshots):
    """Recording and applying step outcomes."""

    def memo_on(self) -> bool:
        """Whether steps are memoised in this execution (checkpoints on, no trace)."""
        return self.memo is not None and self.log is not None and not self.trace_on \
            and self.races is None and self.hashable

    def _memo_key(self, t: ThreadState) -> tuple[int, ...]:
        """What a step of ``t`` from the current state is a function of."""
        return (t.tid, t.key, t.depth, self.zob, len(self.knowledge))

    def _memo_record(self, mk: tuple[int, ...], t: ThreadState, nstarts: int,
                     nnoted: int, fp: tuple[Any, ...]) -> None:
        """Record the step ``t`` just took from the state of ``mk`` (``nstarts``, ``nnoted``:
        its operation starts and the noted findings before it)."""
        memo, log = self.memo, self.log
        assert memo is not None and log is not None
        if self.finding is not None or len(self.noted) != nnoted or not self.hashable or \
                mk[4] != len(self.knowledge) or len(memo) >= MEMO_LIMIT:
            return
        pos0 = self.step_pos[-1]
        writes = []
        objects = self.objects
        for d, f, _old, new in log[pos0:]:
            obj = objects[d["_idx"]]
            if f == "_freed":
                kind = _FREE
            else:
                kind = _GHOST if self._is_ghost(obj, f) else _FIELD
            writes.append((obj, f, new, kind))
        starts = tuple((pos - pos0, index, key, enabling, done)
                       for _s, pos, index, key, enabling, done in t.opstarts[nstarts:])
        memo[mk] = StepOutcome(self.step_res[-1], tuple(writes), t.op, t.key, t.depth,
                               t.blocked, t.value, t.reads, tuple(t.watched), starts,
                               self.enabling, fp, tuple(self.step_joined))

    def _is_ghost(self, obj: Shared, field: str) -> bool:
        k = (type(obj), field)
        g = self._ghost_cache.get(k)
        if g is None:
            g = self._ghost_cache[k] = isinstance(getattr(type(obj), field, None), Ghost)
        return g

    def _memo_apply(self, t: ThreadState, out: StepOutcome) -> tuple[Any, ...] | None:
        """Take ``t``'s step by applying ``out``; returns its footprint before ghost
        writes, or None (nothing changed) if it cannot be applied here."""
        log = self.log
        assert log is not None
        # only a woken waiter's condition can raise a finding here: keep a way back only
        # when a write wakes someone (a watched field, or a free)
        watch = self.watch
        cp = self.checkpoint() if watch and any(
            kind == _FREE or watch.get((obj.__dict__["_idx"], f))
            for obj, f, _new, kind in out.writes) else None
        tid = t.tid
        self.schedule.append(tid)
        pos0 = len(log)
        self.step_pos.append(pos0)
        self.step_res.append(out.res)
        self.nsteps += 1
        self.plain_fp = []
        self.ghost_writes = []
        blocking.unwatch(self, t)
        for obj, f, new, kind in out.writes:
            if kind == _FIELD:
                self._set(obj, obj.__dict__["_name"], f, new)
            elif kind == _GHOST:
                self.ghost_write(obj, f, new)
            else:
                d = obj.__dict__
                log.append((d, "_freed", d["_freed"], new))
                d["_freed"] = new
                self._zob(d["_name"], "_freed", new)
                waits.wake_object(self, d["_idx"])
            if self.finding is not None:  # a woken waiter's condition failed: run it
                assert cp is not None
                self.restore(cp)
                return None
        t.op, t.key, t.depth, t.blocked, t.value, t.reads = \
            out.op, out.key, out.depth, out.blocked, out.value, out.reads
        if out.watched:
            blocking.watch(self, t, out.watched)
        if out.opstarts:
            s = self.nsteps - 1
            t.opstarts.extend([(s, pos0 + off, index, key, enabling, done)
                               for off, index, key, enabling, done in out.opstarts])
        t.stale = True  # its greenlet, if any, is where the step started
        self.enabling = out.enabling
        self.step_joined = []
        for idx, field in out.joined:
            self._join_record(tid, idx, field)
        if self.stale_wakes:
            waits.wake_stale(self)
            if self.finding is not None:
                assert cp is not None
                self.restore(cp)
                return None
        self.memo_hits += 1
        return out.fp
