"""Optimal DPOR: source sets with wakeup trees, so that no execution is sleep-set blocked.

The algorithm is Optimal-DPOR (Abdulla, Aronis, Jonsson, Sagonas, "Source Sets: A
Foundation for Optimal Dynamic Partial Order Reduction", JACM 64(4) 2017, Algorithm 2), on
the same stack, events, vector clocks, sleep sets and race detection as source-DPOR
(dpor/), with two differences:

- A race ``e ⋖ e'`` found while an execution runs is kept until the execution ends. Then
  ``v = notdep(e, E).e'`` is taken over the whole execution ``E`` (every later event that does
  not happen after ``e``, in order, then ``e'``), and, unless a thread asleep before ``e`` is a
  *weak initial* of ``v`` (the reversal is then explored from that sibling), ``v`` is
  inserted in the *wakeup tree* of the node before ``e``.
- A node explores the branches of its wakeup tree, leftmost first, each one's subtree handed
  to the child it leads to; a node whose tree is empty takes any thread not asleep.

Weak initials and the ⊑ test of insertion are computed from the events' footprints
(dependence) and program order, with happens-before taken *within* ``v``. Insertion walks
down the tree: at each level the first branch whose thread is a weak initial of what is left
of ``v`` (its event removed from ``v`` when it is in ``v``); reaching a leaf means ``v`` is
covered; else what is left becomes a new rightmost branch there.

The theory holds for the paper's model: a thread is never disabled, every event is one
access whose target the thread's state decides before it runs, and every execution runs
until its threads finish. A program is searched this way only while that holds: its
objects have no lock, no SRCU, no Plain, Guarded, Ghost or Stable field
(``single_accesses``), no thread reaches a wait, and no finding ends an
execution before its threads could go on (whether a step fails depends on the values it
reads, so a reversal can make or unmake a failure). Any other program, or one found
otherwise during a round, is searched by source-DPOR from the start, as ``dpor`` without
caching does, and the coverage line says so (docs/reductions.md section 14 says why, with
the programs that showed each case). With ``stop_first`` the first finding ends the search
anyway.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution, Footprint
from pfnlab.explore.search.common import (
    CUT_SHORT,
    Budget,
    Clock,
    Result,
    dependent,
)
from pfnlab.explore.search.dpor.search import SourceDpor
from pfnlab.explore.search.dpor.stack import Event, Node
from pfnlab.explore.search.strategy import Strategy
from pfnlab.explore.shared import Ghost, Guarded, Plain
from pfnlab.explore.stable import Stable
from pfnlab.explore.sync import Lock, Srcu

#: what the coverage line calls the search when its wakeup trees ran
_TREES = "optimal DPOR with wakeup trees and sleep sets"


class Branch:
    """A branch of a wakeup tree: a thread's step (as footprinted when it was recorded)
    and the branches to follow after it, leftmost first."""

    __slots__ = ("children", "fp", "tid")

    def __init__(self, tid: int, fp: Footprint, children: list[Branch]) -> None:
        self.tid = tid
        self.fp = fp
        self.children = children


class WakeupTree:
    """A node's wakeup tree: the branches still to explore, and the subtree of the one
    being explored (handed to the child it leads to)."""

    __slots__ = ("branches", "chosen")

    def __init__(self, branches: list[Branch]) -> None:
        self.branches = branches
        self.chosen: list[Branch] = []


class OptimalDpor(SourceDpor):
    """One Optimal-DPOR search of a program (no state caching); source-DPOR for a program
    outside the algorithm's model (see the module docstring)."""

    strategy = "optimal"
    how = _TREES

    def __init__(
        self,
        program: Program,
        budget: Budget,
        *,
        stop_first: bool = True,
        collect_final_states: bool = False,
        snapshots: bool = True,
    ) -> None:
        super().__init__(program, budget, cache=False, stop_first=stop_first,
                         collect_final_states=collect_final_states, snapshots=snapshots,
                         memo=False)
        #: races of the execution under way: (index of e, index of e', e')
        self.found: list[tuple[int, int, Event]] = []
        #: wakeup trees in use: the program's steps are single accesses that never block
        #: (``single_accesses``), as far as known; ``outside``: an execution showed
        #: otherwise (kept for every round); ``restarting``: it did in this round, which
        #: ends so that another, by source-DPOR, starts
        self.trees = False
        self.outside = False
        self.restarting = False

    def _reset(self, clock: Clock) -> None:
        super()._reset(clock)
        self.found = []
        self.restarting = False

    def _round(self, clock: Clock) -> bool:
        probe = self._fresh()
        self.trees = not self.outside and single_accesses(probe)
        probe.close()
        self.how = (_TREES if self.trees else
                    "source-set DPOR with sleep sets: optimal DPOR needs steps that are "
                    "single accesses, threads that never block and no finding that ends an "
                    "execution")
        return super()._round(clock)

    def _interrupted(self) -> bool:
        return self.restarting

    def _leave_model(self) -> None:
        """The program is outside the model this round assumed: the round ends, and
        source-DPOR searches from the start."""
        self.trees = False
        self.outside = self.restarting = True
        self.r.clock.restart = True

    def node(self, ex: Execution, sleep: dict[int, Footprint],
             tclock: tuple[tuple[int, ...], ...], fpr: int | None = None) -> Node:
        """A node of the stack; a thread waiting at it takes the program out of the
        model (which fields a wait reads depends on the values it reads)."""
        if self.trees and _waiting(ex):
            self._leave_model()
        return super().node(ex, sleep, tclock, fpr)

    # ------------------------------------------------------------------ choices
    def _choose(self, top: Node) -> int:
        """The leftmost branch of ``top``'s wakeup tree; with none, any thread not asleep
        if ``top`` has explored nothing yet; -1 when it is done."""
        if not self.trees:
            return super()._choose(top)
        wut = top.wut
        if wut is None:  # the root
            wut = top.wut = WakeupTree([])
        branches = wut.branches
        while branches:
            br = branches.pop(0)
            if br.tid in top.sleep:
                continue  # covered by the sibling that put it to sleep
            if br.tid not in top.enabled:  # pragma: no cover - threads never block here
                raise RuntimeError(f"wakeup tree: thread {br.tid} is not enabled")
            wut.chosen = br.children
            return br.tid
        if top.cur < 0:
            for t in top.enabled:
                if t not in top.sleep:
                    wut.chosen = []
                    return t
        return -1

    def _seed(self, node: Node, parent: Node, p: int) -> None:
        """``node`` (reached by ``p``) starts with the subtree of the branch ``p`` took."""
        if not self.trees:
            super()._seed(node, parent, p)
            return
        node.wut = WakeupTree(parent.wut.chosen if parent.wut is not None else [])

    # ------------------------------------------------------------------ races
    def _race(self, k: int, j: int, ej: Event) -> None:
        """The race events[k] ⋖ ej (ej is, or would be, events[j]): kept for the end of
        the execution, when notdep(e, E) is known."""
        if not self.trees:
            super()._race(k, j, ej)
            return
        if k < self.nfrozen:  # pragma: no cover - tasks are source-DPOR's (parallel/)
            raise RuntimeError("optimal DPOR does not run below a frozen prefix")
        self.found.append((k, j, ej))

    def _execution_ended(self, ex: Execution) -> None:
        """Insert the reversal of every race of ``ex`` in its node's wakeup tree."""
        if not self.trees:
            return
        if ex.cut_short() or not single_accesses(ex) or _waiting(ex):
            # a finding ended the execution before its threads could go on (whether a step
            # fails depends on the values it reads, so a reversal can make or unmake one),
            # or a thread created a lock or a field that joins steps, or waits
            self._leave_model()
            return
        found, self.found = self.found, []
        for k, j, ej in found:
            self._insert(k, j, ej)

    def _insert(self, k: int, j: int, ej: Event) -> None:
        """Insert the reversal of events[k] ⋖ ej (the event at index j) in the wakeup
        tree of stack[k]."""
        events = self.events
        if not (j < len(events) and events[j] is ej):  # pragma: no cover - see the caller
            raise RuntimeError("a race with a pending step inside optimal DPOR's model")
        ek = events[k]
        node = self.stack[k]
        v = [events[i] for i in range(k + 1, len(events))
             if i != j and not ek.seq <= events[i].clock[ek.tid]]
        v.append(ej)
        pred = _orders(v)
        rem = (1 << len(v)) - 1
        for q, qfp in node.sleep.items():
            # (a step cut short by its finding covers nothing after it; such a step also
            # ends the round, outside the model, so none is asleep here in practice)
            if qfp != CUT_SHORT and _weak_initial(q, qfp, v, pred, rem) != -1:
                return  # explored from a sibling already
        wut = node.wut
        if wut is None:  # pragma: no cover - a node's tree exists once it chose a thread
            wut = node.wut = WakeupTree([])
        children = wut.branches
        while rem:
            for br in children:
                at = _weak_initial(br.tid, br.fp, v, pred, rem)
                if at == -1:
                    continue
                if at >= 0:
                    rem &= ~(1 << at)
                if not br.children:
                    return  # a leaf: every extension of this branch covers v
                children = br.children
                break
            else:
                children.append(_chain([v[i] for i in range(len(v)) if rem >> i & 1]))
                return


def single_accesses(ex: Execution) -> bool:
    """Whether ``ex``'s program is in Optimal-DPOR's model as far as its objects tell: no
    lock or SRCU (a thread blocked on one is disabled; a mover's acquire and release join
    neighbouring accesses), no Plain, Guarded, Ghost or Stable field (accesses inside a
    step, or joined to it, which the values a step reads may change). Waits are seen where a
    thread reaches one (``_waiting``)."""
    for obj in ex.objects:
        if isinstance(obj, _BLOCKING):
            return False
        for klass in type(obj).__mro__:
            if any(isinstance(v, _JOINING) for v in vars(klass).values()):
                return False
    return True


def _waiting(ex: Execution) -> bool:
    """Whether some thread of ``ex`` is at a wait (blocked there or about to test it)."""
    return any(ex.waiting(t.tid) for t in ex.threads)


_BLOCKING = (Lock, Srcu)
_JOINING = (Plain, Guarded, Ghost, Stable)


def _orders(v: list[Event]) -> list[int]:
    """For each event of ``v``, the bit set of the events of ``v`` before it that happen
    before it within ``v`` (program order and dependence, transitively)."""
    pred: list[int] = []
    for i, ev in enumerate(v):
        b = 0
        for h in range(i):
            eh = v[h]
            if eh.tid == ev.tid or dependent(eh.fp, ev.fp):
                b |= (1 << h) | pred[h]
        pred.append(b)
    return pred


def _weak_initial(q: int, qfp: Footprint, v: list[Event], pred: list[int], rem: int) -> int:
    """Whether thread ``q`` (whose next step has footprint ``qfp``) is a weak initial of the
    events of ``v`` left in ``rem``: the index of its first event there if that event has no
    predecessor left, -2 if ``q`` has no event left and ``qfp`` is independent of all of
    them, -1 if it is not a weak initial."""
    for i in range(len(v)):
        if rem >> i & 1 and v[i].tid == q:
            return i if pred[i] & rem == 0 else -1
    for i in range(len(v)):
        if rem >> i & 1 and dependent(qfp, v[i].fp):
            return -1
    return -2


def _chain(evs: list[Event]) -> Branch:
    """The events as one branch: each one's only child is the next."""
    out: list[Branch] = []
    for ev in reversed(evs):
        out = [Branch(ev.tid, ev.fp, out)]
    return out[0]


def explore_optimal(
    program: Program,
    budget: Budget | None = None,
    *,
    stop_first: bool = True,
    collect_final_states: bool = False,
) -> Result:
    """Optimal DPOR with wakeup trees and sleep sets (no state caching)."""
    return OptimalDpor(program, budget or Budget(), stop_first=stop_first,
                       collect_final_states=collect_final_states).run()


class Optimal(Strategy):
    """Optimal DPOR: wakeup trees, no sleep-set-blocked executions, no state caching (on
    programs in its model; source-DPOR on the others)."""

    name = "optimal"

    @classmethod
    def from_options(cls, **options: Any) -> Optimal:
        return cls()

    def search(self, program: Program, budget: Budget, *, stop_first: bool) -> Result:
        return explore_optimal(program, budget, stop_first=stop_first)
