"""Source-set DPOR with sleep sets and state caching.

The algorithm is Source-DPOR (Abdulla, Aronis, Jonsson, Sagonas, POPL 2014, Algorithm 1),
run by re-execution: the stack holds one node per state of the current execution; a node
keeps its backtrack set (the source set being built) and its sleep set; events carry vector
clocks, and each new event is checked for races against the earlier events it conflicts
with. For a race ``e ⋖ e'`` the node before ``e`` gets an initial of ``notdep(e).e'``.

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

Invariants of the stack, written next to the data:
- ``len(events) == len(stack) - 1`` between iterations: ``events[i]`` leads from
  ``stack[i]`` to ``stack[i + 1]``;
- ``obj_events[o]`` lists, in increasing order, the indices of events touching object ``o``;
- a node's ``sleep`` maps the threads whose next step is covered elsewhere to that step's
  footprint (as executed when it was explored); explored threads join it when their subtree
  is done. A sleeping thread's next step cannot change without a dependent step, which wakes
  it, so the recorded footprint stays exact.

Blocked threads: after each step, the pending step of every blocked thread is race-checked
as if it ran next (Flanagan and Godefroid's rule for disabled transitions); a thread woken
and blocked again before it is scheduled never has an executed event to race with.

Findings cut executions short. The step that causes a finding disables every other thread,
so it is treated as dependent with each of their pending steps, and those pending steps are
race-checked as if they ran next; otherwise reorderings that reach other findings would be
lost.

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
from pfnlab.explore.runtime.snapshot import Checkpoint
from pfnlab.explore.search.common import (
    CUT_SHORT,
    Budget,
    Clock,
    Result,
    Run,
    Stats,
    dependent,
    ended,
    wakes,
)
from pfnlab.explore.search.strategy import Strategy, rounds
from pfnlab.explore.search.visited import Summary, VisitedTable
from pfnlab.explore.shared import ALL_FIELDS


class Event:
    __slots__ = ("acq", "clock", "fp", "seq", "tid")

    def __init__(self, tid: int, fp: Footprint, seq: int, clock: tuple[int, ...]) -> None:
        self.tid = tid
        self.fp = fp
        self.seq = seq        # 1-based position of this event among its thread's events
        self.clock = clock    # clock[t] = how many of thread t's events happen before (incl.)
        self.acq = -1         # the lock the step began by taking (Execution.acquiring), or -1


class Node:
    __slots__ = (
        "backtrack",
        "cp",
        "cp_ex",
        "cur",
        "enabled",
        "fingerprint",
        "full",
        "hints",
        "init_sleep",
        "pending",
        "sleep",
        "summary",
        "tclock",
        "wut",
    )

    def __init__(
        self,
        enabled: list[int],
        pending: dict[int, Footprint],
        sleep: dict[int, Footprint],
        tclock: tuple[tuple[int, ...], ...],
        fingerprint: int | None,
    ) -> None:
        self.enabled = enabled
        self.pending = pending
        self.sleep = sleep
        self.init_sleep = frozenset(sleep)   # threads asleep on arrival
        self.backtrack: set[int] = set()
        for t in enabled:
            if t not in sleep:
                self.backtrack.add(t)
                break
        self.tclock = tclock
        self.fingerprint = fingerprint
        self.cur = -1
        self.full = False
        # thread -> reversal sequences to follow after it (see _race)
        self.hints: dict[int, set[tuple[int, ...]]] = {}
        self.summary: set[tuple[int, int, str, bool]] = set()
        self.cp: Checkpoint | None = None     # the state, to restore (snapshot.py)
        self.cp_ex: Execution | None = None   # the execution the checkpoint belongs to
        self.wut: Any = None                  # the wakeup tree (optimal.py only)


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
            self._leaf(ex, None)  # (the only execution: no step at all)
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
            ev = self.event(p, fp, depth, top, acq)
            events.append(ev)
            for o in {i for i, _f, _w in fp}:
                self.obj_events.setdefault(o, []).append(depth)
            top.summary.update((p, i, f, w) for i, f, w in fp)
            self.blocked_races(ex, depth, ev, top)
            child_sleep = {q: f for q, f in top.sleep.items() if not wakes(f, fp)}
            self.ex_depth = depth + 1
            if ended(ex, self.stop_first):
                if ex.finding is not None and not self.stop_first:
                    self.cut_races(ex, depth, ev, top)
                self._leaf(ex, None)
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
                    self._summary_races(entry.summary, depth + 1, ev, top)
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
        pending = {t: ex.pending_footprint(t) for t in ex.live()}
        node = Node(ex.enabled(), pending, sleep, tclock, fpr)
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

    def _leaf(self, ex: Execution, _node: Node | None) -> None:
        new = self.r.leaf(ex, collect=self.collect)
        self.stats.states = len(self.visited)
        if new is not None and self.stop_first:
            self.stack.clear()
        self.ex_depth = -1

    # ------------------------------------------------------------------ races
    def event(self, p: int, fp: Footprint, depth: int, top: Node, acq: int = -1) -> Event:
        """Vector clock of the new event and race detection against earlier events.
        ``acq``: the lock the step took (its first operation), -1 if none."""
        ev, races = self._scan(p, fp, top.tclock[p], None)
        ev.acq = acq
        if acq >= 0:
            races = self._lock_races(acq, races, p, fp, top.tclock[p])
        for k in races:
            self._race(k, depth, ev)
        return ev

    def _lock_races(self, lock: int, races: list[int], p: int, fp: Footprint,
                    pclock: tuple[int, ...]) -> list[int]:
        """``races`` of a step of ``p`` that begins by taking ``lock``, with the race against
        the release that made the lock free moved to the acquire it ends.

        A held lock makes its acquirer not enabled, so the acquire cannot be reordered
        with the holder's release: it can only go before the holder's acquire, where the
        lock was free. The two acquires race (as in Nidhugg and the source-set papers)
        unless the holder's acquire happens before this step through something other than
        the critical section it opened (then another race reorders that first)."""
        events = self.events
        lst = self.obj_events.get(lock, ())
        r = next((i for i in reversed(lst) if _writes(events[i].fp, lock)), -1)
        if r < 0 or r not in races or events[r].acq == lock:
            return races  # (a step that took and dropped it: the lock was free before it)
        holder = events[r].tid
        out = [k for k in races if k != r]
        a = next((i for i in reversed(lst)
                  if i < r and events[i].tid == holder and events[i].acq == lock), -1)
        if a < 0:  # held since the initial state: no order has this step first
            return out
        # the clock of this step without the lock's hand-off (its lock word, and the
        # holder's critical section [a, r]): what else orders it after the holder's acquire
        data = tuple(x for x in fp if not (x[0] == lock and x[1] == "owner"))
        rest, _ = self._scan(p, data, pclock, None, (holder, a, r))
        if events[a].seq > rest.clock[holder]:
            out.append(a)
        return out

    def _scan(
        self, p: int, fp: Footprint, pclock: tuple[int, ...], forced: int | None,
        skip: tuple[int, int, int] | None = None,
    ) -> tuple[Event, list[int]]:
        """The clock of p's step ``fp`` after ``self.events``, and the events it races with.

        ``forced`` is the index of an event treated as dependent whatever the footprints;
        ``skip`` = ``(tid, first, last)``: thread ``tid``'s events from index ``first`` to
        ``last`` are treated as independent of it (:meth:`_lock_races`).
        """
        events = self.events
        c = list(pclock)
        cands: set[int] = set()
        for o in {i for i, _f, _w in fp}:
            cands.update(self.obj_events.get(o, ()))
        if forced is not None:
            cands.add(forced)
        races: list[int] = []
        for k in sorted(cands, reverse=True):
            ek = events[k]
            if ek.tid == p or ek.seq <= c[ek.tid]:
                continue
            if skip is not None and ek.tid == skip[0] and skip[1] <= k <= skip[2]:
                continue
            if k != forced and not dependent(ek.fp, fp):
                continue
            races.append(k)
            for t, v in enumerate(ek.clock):
                if v > c[t]:
                    c[t] = v
        seq = pclock[p] + 1
        c[p] = seq
        return Event(p, fp, seq, tuple(c)), races

    def cut_races(self, ex: Execution, depth: int, ev: Event, top: Node) -> None:
        """A finding at events[depth] cut the execution: race-check the pending steps."""
        for t in ex.threads:
            q = t.tid
            if q == ev.tid or t.op is None or t.blocked:
                continue
            tq = ev.clock if q == ev.tid else top.tclock[q]
            pending = ex.pending_footprint(q)
            # they belong to this state's future too: a later cache hit must see them
            top.summary.update((q, i, f, w) for i, f, w in pending)
            virtual, races = self._scan(q, pending, tq, depth)
            for k in races:
                self._race(k, depth + 1, virtual)

    def blocked_races(self, ex: Execution, depth: int, ev: Event, top: Node) -> None:
        """Race-check the pending steps of the threads blocked after events[depth].

        A blocked thread's next step may never run in this execution (it stays blocked, or
        is woken and blocked again before it is scheduled), so source-DPOR, which races
        executed events only, would never reverse the writes that keep it blocked. As
        Flanagan and Godefroid's DPOR does for every thread's next transition, enabled or
        not, its pending step is checked as if it ran next; where that thread is not enabled
        at the backtrack point, ``_race`` adds the initials that lead to it."""
        for t in ex.threads:
            q = t.tid
            if t.op is None or not t.blocked:
                continue
            # (the thread that stepped too: its step may end at an acquire of a held lock,
            # which makes it not enabled with no step of its own)
            pending = ex.pending_footprint(q)
            # below this state too: a later cache hit must see them
            top.summary.update((q, i, f, w) for i, f, w in pending)
            virtual, races = self._scan(q, pending, ev.clock if q == ev.tid else top.tclock[q],
                                        None)
            for k in races:
                self._race(k, depth + 1, virtual)

    def _race(self, k: int, j: int, ej: Event) -> None:
        """Handle the race events[k] ⋖ ej (ej would be events[j])."""
        events = self.events
        ek = events[k]
        node = self.stack[k]
        if node.full:
            return
        v = [events[i] for i in range(k + 1, j) if not ek.seq <= events[i].clock[ek.tid]]
        v.append(ej)
        initials: list[int] = []
        seen: set[int] = set()
        for idx, el in enumerate(v):
            if el.tid in seen:
                continue
            seen.add(el.tid)
            if not any(em.seq <= el.clock[em.tid] for em in v[:idx]):
                initials.append(el.tid)
        if k < self.nfrozen:  # a frozen node: whoever froze it decides
            self.reports.append(("race", k, tuple(initials), tuple(el.tid for el in v)))
            return
        apply_race(node, initials, [el.tid for el in v])

    def _summary_races(self, summary: Summary, depth: int, ev: Event, top: Node) -> None:
        """A cache hit at ``stack[depth]``: conservatively expand nodes that may race."""
        events = self.events
        tclock = list(top.tclock)
        tclock[ev.tid] = ev.clock
        for q, o, f, w in summary:
            for k in self.obj_events.get(o, ()):
                node = self.stack[k]
                if node.full:
                    continue
                ek = events[k]
                if ek.tid == q or ek.seq <= tclock[q][ek.tid]:
                    continue
                for i2, f2, w2 in ek.fp:
                    if i2 == o and (w or w2) and (f in (f2, ALL_FIELDS) or f2 == ALL_FIELDS):
                        if k < self.nfrozen:  # a frozen node: whoever froze it decides
                            self.reports.append(("full", k))
                        else:
                            expand_fully(node)
                        break


def apply_race(node: Node, initials: list[int], v: list[int]) -> None:
    """Add to ``node``'s backtrack set (and hints) for a race whose reversal is ``v`` (the
    threads of notdep(e).e', in order) with these ``initials``.

    Any initial of ``v`` is one the reversal can start with; one that is not enabled at the
    node (a thread waiting for a lock that a step of ``v`` releases) cannot, so an enabled
    initial is taken in its place; with none, every enabled thread (the conservative rule
    for disabled steps)."""
    head = next((t for t in initials if t in node.backtrack), -1)
    if head < 0:
        last = v[-1]
        head = last if last in initials else (initials[0] if initials else -1)
        if head not in node.enabled:
            head = next((t for t in initials if t in node.enabled), -1)
        if head in node.enabled:
            node.backtrack.add(head)
        else:
            node.backtrack.update(node.enabled)
            return
    # Remember the rest of the reversal, to follow it after ``head`` (as wakeup trees
    # do). Source-DPOR alone relies on rediscovering the race in the new execution; that
    # failed when a blocked waiter's pending step showed less than the step it took when
    # the wait passed, which now ends its step there (docs/reductions.md section 2). The
    # hints stay as a strengthening; a cache hit cannot pass them on, and does not need to.
    rest: list[int] = []
    skipped = False
    for tid in v:
        if not skipped and tid == head:
            skipped = True
            continue
        rest.append(tid)
    if rest:
        node.hints.setdefault(head, set()).add(tuple(rest))


def _writes(fp: Footprint, obj: int) -> bool:
    """Whether footprint ``fp`` writes the lock word of lock ``obj`` (takes or drops it)."""
    return any(i == obj and f == "owner" and w for i, f, w in fp)


def explore_dpor(
    program: Program,
    budget: Budget | None = None,
    *,
    cache: bool = True,
    stop_first: bool = True,
    collect_final_states: bool = False,
) -> Result:
    """Source-set DPOR with sleep sets (and state caching when states hash)."""
    return SourceDpor(
        program,
        budget or Budget(),
        cache=cache,
        stop_first=stop_first,
        collect_final_states=collect_final_states,
    ).run()


def expand_fully(node: Node) -> None:
    """Every enabled thread of ``node`` joins its backtrack set (a conservative race)."""
    node.backtrack.update(node.enabled)
    node.full = True


class Dpor(Strategy):
    """Source-set DPOR with sleep sets and state caching (``cache``)."""

    name = "dpor"

    def __init__(self, cache: bool = True) -> None:
        self.cache = cache

    @classmethod
    def from_options(cls, **options: Any) -> Dpor:
        return cls(cache=options.get("cache", True))

    def search(self, program: Program, budget: Budget, *, stop_first: bool) -> Result:
        return explore_dpor(program, budget, cache=self.cache, stop_first=stop_first)
