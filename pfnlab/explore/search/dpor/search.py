"""Source-set DPOR with sleep sets and state caching: the search.

The algorithm is Source-DPOR (Abdulla, Aronis, Jonsson, Sagonas, POPL 2014, Algorithm 1),
run by re-execution: the stack holds one node per state of the current execution; a node
keeps its backtrack set (the source set being built) and its sleep set; events carry vector
clocks, and each new event is checked for races against the earlier events it conflicts
with. For a race ``e ⋖ e'`` the node before ``e`` gets an initial of ``notdep(e).e'``.
The stack's events and nodes are stack.py; race detection, races.py.

State caching on top (when the model state can be hashed): a state reached again is not
explored again if its first exploration started with a sleep set contained in the current
one. Its subtree may still race with the current prefix, so each cached state keeps a
*summary*: the (thread, field, access) triples of every event explored below it. On a cache
hit every stack event that conflicts with a summary entry of another thread, and does not
happen before that thread's next step, gets its node fully expanded. That is the
conservative summary method of stateful DPOR (Yang et al., SPIN 2008); it keeps the search
sound at the cost of some reduction. A state reached again while it is still on the stack
(a retry loop back to an earlier state) is never pruned: no subtree is cut off by a cycle,
so no cycle proviso is needed.

The visibility proviso: invariants read shared (and ghost) fields at intermediate states.
Steps that write a field an invariant reads carry a write of a shared pseudo-object, so their
relative order is explored. Which fields invariants read is learnt while searching; if a
search observes a field it did not treat as visible, it is run again with the larger set,
until nothing new is observed (``Stats.rounds``). Ghost writes count as writes in footprints.
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
    Run,
    Stats,
    ended,
    wakes,
)
from pfnlab.explore.search.dpor.races import (
    blocked_races,
    cut_races,
    event,
    race,
    summary_races,
)
from pfnlab.explore.search.dpor.stack import Event, Node
from pfnlab.explore.search.strategy import rounds
from pfnlab.explore.search.visited import VisitedTable


class SourceDpor:
    """One source-DPOR search of a program."""

    def __init__(
        self,
        program: Program,
        budget: Budget,
        *,
        cache: bool = True,
        stop_first: bool = True,
        collect_final_states: bool = False,
        snapshots: bool = True,
        memo: bool = True,
    ) -> None:
        self.program = program
        #: the first steps of every execution may be *frozen*: replayed, their nodes kept
        #: as placeholders, races with them reported in ``reports`` instead of acted on
        #: (a search below a fixed prefix: a parallel search's task, parallel/task_search.py)
        self.nfrozen = 0
        self.reports: list[tuple[Any, ...]] = []
        self.snapshots = snapshots
        #: memoised step outcomes (stepmemo.py) rest on the premise state caching rests on
        #: (a thread's state is its history key): with caching only
        self.memo = snapshots and cache and memo
        self.budget = budget
        self.cache_on = cache
        self.stop_first = stop_first
        self.collect = collect_final_states
        self.r = Run(program, budget)
        self.visited = VisitedTable()
        self.stack: list[Node] = []
        self.events: list[Event] = []
        self.obj_events: dict[int, list[int]] = {}
        self.ex: Execution | None = None
        self.ex_depth = -1
        self.nthreads = 0
        self.visible: set[tuple[int, str]] = set()
        self.observed: set[tuple[int, str]] = set()

    @property
    def stats(self) -> Stats:
        """The statistics of the current round."""
        return self.r.stats

    # ------------------------------------------------------------------ driver
    #: one visibility round only (a task: its coordinator starts again with new fields)
    single_round = False
    #: what the coverage line calls the search, and its strategy's name
    how = "source-set DPOR with sleep sets"
    strategy = "dpor"

    def run(self) -> Result:
        """Explore, in rounds (strategy.rounds) until nothing new is learnt about the program
        and the visible fields are a fixpoint; returns the result."""
        self.visible = self._initial_visible()
        cut = False

        def one(clock: Clock) -> Stats:
            nonlocal cut
            self._reset(clock)
            try:
                cut = self._round(clock)
            except KeyboardInterrupt:
                clock.interrupted = cut = True
            return self.stats

        def more() -> bool:
            """Another round, with the fields checks read that no step treated as visible
            (one that finds nothing new, or a task's only round, is the last)."""
            new = self.observed - self.visible
            if cut or (self.r.findings and self.stop_first) or not new or self.single_round:
                return False
            self.visible |= new
            return True

        clock, _n, stats = rounds(self.program, self.budget, one, more)
        stats.states = len(self.visited)
        stopped = bool(self.r.findings) and self.stop_first
        if cut:
            coverage = clock.cut(stats)
        elif stopped:
            coverage = f"stopped at the first finding, after {stats.executions} executions"
        else:
            how = self.how
            if stats.caching:
                how += f" and state caching ({stats.states} states)"
            coverage = f"exhaustive: every interleaving up to equivalence ({how})"
        return self.r.result(self.strategy, coverage, not cut and not stopped)

    def _initial_visible(self) -> set[tuple[int, str]]:
        """The fields the first round treats as visible: what checks read initially."""
        probe = self._fresh()
        visible = set(probe.observed)
        probe.close()
        return visible

    def _table(self) -> VisitedTable:
        """The table of visited states of a round."""
        return VisitedTable()

    def _visit(self, fp: int, init_sleep: frozenset[int]) -> None:
        """State ``fp`` is explored with ``init_sleep`` asleep (a task also keeps the new)."""
        self.visited.visit(fp, init_sleep)

    def _completed(self, fp: int) -> None:
        """The subtree of state ``fp`` was explored in full (a task shares it)."""

    def _interrupted(self) -> bool:
        """Whether the round must end now, with nothing learnt about the program (a task:
        it observed a field no step treated as visible)."""
        return False

    def _between_steps(self) -> None:
        """Between two iterations of the search loop, the stack consistent (a task: cut
        the nodes whose states another worker completed meanwhile)."""

    def _reset(self, clock: Clock) -> None:
        self.r = Run(self.program, self.budget)
        self.r.clock = clock
        self.visited = self._table()
        self.reports = []
        self.stack = []
        self.events = []
        self.obj_events = {}
        self.ex = None
        self.ex_depth = -1

    def _round(self, clock: Clock) -> bool:
        ex = self._fresh()
        self.nthreads = len(ex.threads)
        self.stats.caching = self.cache_on and ex.hashable
        if ended(ex, self.stop_first) or not ex.enabled():
            self._leaf(ex)  # (the only execution: no step at all)
            self._execution_ended(ex)
            return False
        zero = tuple(tuple(0 for _ in range(self.nthreads)) for _ in range(self.nthreads))
        root = self.node(ex, {}, zero)
        self.stack.append(root)
        self.ex, self.ex_depth = ex, 0
        return self._loop(clock)

    def _fresh(self) -> Execution:
        return self.r.execution([], visible=self.visible, observed=self.observed,
                                snapshots=self.snapshots, memo=self.memo)

    def _loop(self, clock: Clock) -> bool:
        stack, events = self.stack, self.events
        while len(stack) > self.nfrozen:
            if clock.out(self.stats) or self._interrupted():
                return True
            self._between_steps()
            top = stack[-1]
            depth = len(stack) - 1
            p = self._choose(top)
            if p < 0:
                self._pop()
                continue
            top.cur = p
            ex = self._at(depth)
            rebuilt, hits = ex.rebuilt_steps, ex.memo_hits
            acq = ex.acquiring(p)
            fp = ex.step(p)
            self.stats.steps += 1 + ex.rebuilt_steps - rebuilt
            self.stats.memoised += ex.memo_hits - hits
            ev = event(self, p, fp, depth, top, acq)
            events.append(ev)
            for o in {i for i, _f, _w in fp}:
                self.obj_events.setdefault(o, []).append(depth)
            top.summary.update((p, i, f, w) for i, f, w in fp)
            blocked_races(self, ex, depth, ev, top)
            child_sleep = {q: f for q, f in top.sleep.items() if not wakes(f, fp)}
            self.ex_depth = depth + 1
            if ended(ex, self.stop_first):
                if ex.finding is not None and not self.stop_first:
                    cut_races(self, ex, depth, ev, top)
                self._leaf(ex)
                self._execution_ended(ex)
                self._undo_event()
                top.sleep[p] = CUT_SHORT if ex.cut_short() else fp
                continue
            enabled = ex.enabled()
            if not enabled:  # pragma: no cover - the runtime reports hangs as findings
                self._execution_ended(ex)
                self._undo_event()
                top.sleep[p] = fp
                continue
            follow = top.hints.get(p, ())
            fpr = ex.fingerprint() if self.cache_on else None
            if fpr is not None and not follow:
                entry = self.visited.lookup(fpr)
                # entry.summary is None: the state is on the stack (a cycle: a retry loop
                # back to an earlier state); never prune there (no cycle proviso needed)
                if (entry is not None and entry.summary is not None
                        and entry.init_sleep.issubset(child_sleep)):
                    self.r.absorb(ex, collect=self.collect)
                    self.stats.pruned += 1
                    self.stats.executions += 1
                    top.summary |= entry.summary
                    summary_races(self, entry.summary, depth + 1, ev, top)
                    self._execution_ended(ex)
                    self._undo_event()
                    top.sleep[p] = fp
                    continue
            if all(t in child_sleep for t in enabled):
                self.r.absorb(ex, collect=self.collect)
                self.stats.sleep_blocked += 1
                self.stats.executions += 1
                self._execution_ended(ex)
                self._undo_event()
                top.sleep[p] = fp
                continue
            tclock = (*top.tclock[:p], ev.clock, *top.tclock[p + 1:])
            node = self.node(ex, child_sleep, tclock, fpr)
            self._seed(node, top, p)
            stack.append(node)
            if len(stack) > self.stats.max_depth:
                self.stats.max_depth = len(stack)
            if fpr is not None:
                self._visit(fpr, node.init_sleep)
        return False

    # ------------------------------------------------------------------ choices
    def _choose(self, top: Node) -> int:
        """The thread to explore next at ``top`` (-1: none left): the least of its backtrack
        set that is not asleep."""
        for t in sorted(top.backtrack):
            if t not in top.sleep:
                return t
        return -1

    def _seed(self, node: Node, parent: Node, p: int) -> None:
        """What ``node``, reached from ``parent`` by ``p``'s step, starts with: the
        reversal sequences the parent remembered to follow after ``p`` (apply_race)."""
        for seq in parent.hints.get(p, ()):
            t = seq[0]
            if t in node.enabled and t not in node.sleep:
                node.backtrack.add(t)
                if len(seq) > 1:
                    node.hints.setdefault(t, set()).add(seq[1:])

    def _execution_ended(self, ex: Execution) -> None:
        """Execution ``ex`` has ended (its last event is still on ``events``)."""

    # ------------------------------------------------------------------ helpers
    def node(
        self,
        ex: Execution,
        sleep: dict[int, Footprint],
        tclock: tuple[tuple[int, ...], ...],
        fpr: int | None = None,
    ) -> Node:
        node = Node(ex.enabled(), sleep, tclock, fpr)
        if ex.snapshots_ok():
            node.cp, node.cp_ex = ex.checkpoint(), ex
        return node

    def _at(self, depth: int) -> Execution:
        """The live execution, positioned at the state of ``stack[depth]``."""
        if self.ex is not None and self.ex_depth == depth:
            return self.ex
        node = self.stack[depth]
        ex = self.ex
        if ex is not None and node.cp is not None and node.cp_ex is ex and ex.snapshots_ok():
            rebuilt = ex.rebuilt_steps
            ex.restore(node.cp)  # the live execution is at a descendant of the node
            self.stats.steps += ex.rebuilt_steps - rebuilt
            self.ex_depth = depth
            return ex
        if ex is not None:
            ex.close()
        tids = [e.tid for e in self.events[:depth]]
        ex = self.r.execution(tids, visible=self.visible, observed=self.observed,
                              snapshots=self.snapshots, memo=self.memo)
        self.stats.steps += len(tids)
        self.ex, self.ex_depth = ex, depth
        return ex

    def _undo_event(self) -> None:
        ev = self.events.pop()
        j = len(self.events)
        for o in {i for i, _f, _w in ev.fp}:
            lst = self.obj_events[o]
            assert lst[-1] == j
            lst.pop()

    def _pop(self) -> None:
        node = self.stack.pop()
        if node.fingerprint is not None:
            self.visited.complete(node.fingerprint, frozenset(node.summary))
            self._completed(node.fingerprint)
        if len(self.stack) <= self.nfrozen:  # the root (of a task: its parent is frozen)
            self.ex_depth = -1
            return
        fp = self.events[-1].fp
        self._undo_event()
        parent = self.stack[-1]
        parent.summary |= node.summary
        parent.sleep[parent.cur] = fp
        self.ex_depth = -1

    def _leaf(self, ex: Execution) -> None:
        new = self.r.leaf(ex, collect=self.collect)
        self.stats.states = len(self.visited)
        if new is not None and self.stop_first:
            self.stack.clear()
        self.ex_depth = -1

    # ------------------------------------------------------------------ races
    def _race(self, k: int, j: int, ej: Event) -> None:
        """Handle the race events[k] ⋖ ej (ej would be events[j]): races.race (optimal.py
        handles it its own way)."""
        race(self, k, j, ej)
