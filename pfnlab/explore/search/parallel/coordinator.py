"""One DPOR search on many workers: the sequential search, with its subtrees handed out.

The coordinator runs source-set DPOR (dpor.py) over the first ``depth`` steps of every
execution: the same stack nodes (backtrack sets, sleep sets, reversal hints), the same race
detection, kept as a tree instead of a stack. Where the sequential search would go below
``depth`` it makes a *task* instead: the schedule so far, the sleep set and hints the child
node would get, and the fields invariants read. A worker (workers.py: local processes or
Ray) replays the schedule, freezes the nodes above, and runs the sequential algorithm below
(``SourceDpor(task=...)``), with a table of visited states it keeps from task to task.
Races between an event below the frontier and one above it are not acted on by the worker:
they are sent back (``("race", k, initials, reversal)``, or ``("full", k)`` for a cache
hit's conservative expansion) and the coordinator applies them to its node ``k``
exactly as the sequential search would (:func:`~pfnlab.explore.search.dpor.apply_race`),
which may give that node new threads to explore, hence new tasks. This is the scheme of
Simsa, Bryant and Gibson's scalable DPOR. The search ends when no node has a thread left to
explore and no task is out.

Why it explores what the sequential search explores (docs/reductions.md, section 12): every
decision of the sequential algorithm at a node depends on the races found below it and on
the siblings explored before it. Here a node's sibling order is the order the coordinator
*starts* them, and a started sibling joins the node's sleep set at once, with the footprint
of its first step: a sleeping thread means "its subtree covers these executions", true as
soon as that subtree will be explored in full, which every started task is. Race reports
reach the node they are about whatever the order tasks finish in, and a thread they add
is explored when it arrives (a hint for a thread already started is dropped, as the
sequential search drops it). What differs from the sequential search is only which state
a worker's cache has seen: a cache hit below the frontier is the sequential algorithm's
cache hit (same condition, same summary races, now also against the frozen nodes).

A worker that observes a field no round treated as visible, or promotes a stable field,
changes the steps of every task: the coordinator starts the whole search again with it.
"""

from __future__ import annotations

import heapq
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pfnlab.explore.collect import active as active_records
from pfnlab.explore.collect import fresh_records, merge_records
from pfnlab.explore.findings import Finding
from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution, Footprint
from pfnlab.explore.search.common import (
    _PROGRESS,
    CUT_SHORT,
    INTERRUPTED_BY,
    Budget,
    Clock,
    Result,
    Stats,
    ended,
    wakes,
)
from pfnlab.explore.search.dpor import Event, Node, SourceDpor, apply_race, expand_fully
from pfnlab.explore.search.parallel.exchange import SharedTable
from pfnlab.explore.search.parallel.tasks import Task, TaskResult, WorkerDied, WorkerLost
from pfnlab.explore.search.strategy import SUMMED, rounds

#: the frontier: tasks start this many steps below the root (at most; fewer where
#: executions are shorter)
DEPTH = 12

#: how often a search found a node with work its queue had missed (a bug: the search
#: explores it all the same; the tests check this stays 0)
MISSED = [0]


@dataclass
class _Tree:
    """The coordinator's nodes: each with the events and nodes of its path, and a queue
    of the nodes that may have a thread to explore, deepest (latest made) first."""

    nodes: list[Node] = field(default_factory=list)
    path: dict[int, tuple[list[Node], list[Event], tuple[int, ...]]] = field(
        default_factory=dict)
    index: dict[int, int] = field(default_factory=dict)
    heap: list[int] = field(default_factory=list)
    queued: set[int] = field(default_factory=set)

    def add(self, node: Node, nodes: list[Node], events: list[Event],
            tids: tuple[int, ...]) -> None:
        self.index[id(node)] = len(self.nodes)
        self.nodes.append(node)
        self.path[id(node)] = (nodes, events, tids)
        self.touch([node])

    def touch(self, nodes: list[Node]) -> None:
        """``nodes`` may have been given threads to explore: queue them."""
        for n in nodes:
            i = self.index[id(n)]
            if i not in self.queued:
                self.queued.add(i)
                heapq.heappush(self.heap, -i)

    def open_work(self) -> tuple[Node, int] | None:
        """The deepest node with a thread to explore (not started, not asleep). Every
        change to a node's backtrack set touches it; a node leaves the queue when it
        has nothing left (and comes back when touched again)."""
        heap = self.heap
        while heap:
            node = self.nodes[-heap[0]]
            for t in sorted(node.backtrack):
                if t not in node.sleep:
                    return node, t
            self.queued.discard(-heapq.heappop(heap))
        return None

    def untouched_work(self) -> bool:
        """Whether a node has a thread to explore that was never queued (a missed
        ``touch``); such nodes are queued now."""
        missed = [n for n in self.nodes if any(t not in n.sleep for t in n.backtrack)]
        self.touch(missed)
        return bool(missed)


@dataclass
class Progress:
    """What the coordinator reports as it goes (``on_progress``)."""

    workers: int
    tasks_done: int = 0
    tasks_out: int = 0
    tasks_made: int = 0
    executions: int = 0
    states: int = 0


def explore_parallel(
    program: Program,
    budget: Budget,
    backend: Any,
    *,
    stop_first: bool = True,
    collect_final_states: bool = False,
    cache: bool = True,
    depth: int = DEPTH,
    on_progress: Callable[[Progress], None] | None = None,
) -> Result:
    """Source-set DPOR of ``program`` with its subtrees below ``depth`` explored by
    ``backend``'s workers (see the module doc): the same findings, final states and
    verdicts as :func:`~pfnlab.explore.search.dpor.explore_dpor`."""
    start = time.perf_counter()
    probe = Execution(program, max_steps=budget.max_steps)
    visible = frozenset(probe.observed)
    probe.close()
    last: list[_Coordinator] = []
    results: list[Result] = []

    def one(_clock: Clock) -> Stats:
        nonlocal visible
        c = _Coordinator(program, budget, backend, stop_first, collect_final_states, cache,
                         depth, visible, start, on_progress)
        last[:] = [c]
        results[:] = [c.run()]
        if c.restart and not c.interrupted:  # (with what was learnt, or by itself:)
            visible = visible | c.observed
        return results[0].stats

    def more() -> bool:
        """Another round, with the fields a task observed that no step treated as visible
        (every step so far may be a different step now)."""
        return last[0].restart and not last[0].interrupted

    _clock, _n, _stats = rounds(program, budget, one, more)
    res = results[0]
    res.stats.seconds = time.perf_counter() - start
    return res


class _Coordinator:
    """One round of a parallel search (fixed visible fields and promotions)."""

    def __init__(self, program: Program, budget: Budget, backend: Any, stop_first: bool,
                 collect: bool, cache: bool, depth: int, visible: frozenset[tuple[int, str]],
                 start: float, on_progress: Callable[[Progress], None] | None) -> None:
        self.program = program
        self.budget = budget
        self.backend = backend
        self.stop_first = stop_first
        self.collect = collect
        self.cache = cache
        self.depth = depth
        self.visible = visible
        self.start = start
        self.on_progress = on_progress
        self.promoted = program.knowledge.all()
        self.search = uuid.uuid4().hex
        self.dpor = SourceDpor(program, budget, stop_first=stop_first,
                               collect_final_states=collect, cache=False, snapshots=False)
        self.dpor.visible = set(visible)
        self.run_ = self.dpor.r
        self.tree = _Tree()
        self.started: dict[tuple[int, int], _Start] = {}
        self.shared = SharedTable()
        self.results: list[TaskResult] = []
        self.states: set[int] = set()
        self.observed: frozenset[tuple[int, str]] = frozenset()
        self.promotions_changed = False
        self.restart = False
        self.cut = False
        #: why the search stopped without a budget: its workers were lost (WorkerLost)
        self.lost = ""
        self.interrupted = False
        self.progress = Progress(backend.workers)
        self.shown = 0.0
        self.steps = 0
        #: the coordinator's live execution and the schedule of the state it is in: a node
        #: on that schedule is reached by restoring its checkpoint (snapshot.py), any other
        #: by re-executing its schedule
        self.live: Execution | None = None
        self.live_tids: tuple[int, ...] = ()
        #: the side records active here (explore/collect.py): tasks' records merge into them
        self.records = active_records()

    # ------------------------------------------------------------------ coordinator
    def run(self) -> Result:
        r = self.run_
        ex = self._execution(())
        if len(self.program.knowledge) != len(self.promoted):  # learnt in initial runs
            ex.close()
            self.restart = True
            return self._result(0)
        self.dpor.nthreads = n = len(ex.threads)
        if ended(ex, self.stop_first) or not ex.enabled():
            r.leaf(ex, collect=self.collect)
            ex.close()
            return self._result(0)
        zero = tuple(tuple(0 for _ in range(n)) for _ in range(n))
        self._note_state(ex)
        root = self.dpor.node(ex, {}, zero)
        self.live, self.live_tids = ex, ()
        self.tree.add(root, [root], [], ())
        try:
            self.backend.start(self.program, self.shared)
            self._loop()
            self.observed = self.observed | frozenset(self.dpor.observed)
            if self.observed - self.visible and not self.cut and not (
                    self.stop_first and r.findings):
                self.restart = True
        except _Restart:
            self.restart = True
        except WorkerDied:
            self.restart = True
        except WorkerLost as e:
            import sys

            print(f"pfnlab: {e}; the search stops here", file=sys.stderr)
            self.cut = True
            self.lost = str(e)
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            self.backend.stop()
            if self.live is not None:
                self.live.close()
                self.live = None
        return self._result(len(self.tree.nodes))

    def _loop(self) -> None:
        while True:
            if self.stop_first and self.run_.findings:
                return
            if self.budget.seconds is not None and \
                    time.perf_counter() - self.start >= self.budget.seconds:
                self.cut = True
                return
            work = self.tree.open_work()
            if work is not None:
                self._step(*work)
                continue
            if not self.backend.pending():
                if self.tree.untouched_work():  # pragma: no cover - a missed touch
                    MISSED[0] += 1
                    continue
                return
            res = self.backend.next_result(0.25)
            if res is None:  # nothing finished yet: refresh the progress display
                self._report()
                continue
            self._absorb(res)

    def _execution(self, tids: tuple[int, ...]) -> Execution:
        return self.run_.execution(list(tids), visible=set(self.visible),
                                   observed=self.dpor.observed, snapshots=True)

    def _at(self, node: Node, tids: tuple[int, ...]) -> Execution:
        """The live execution, in ``node``'s state (``tids`` its schedule)."""
        ex = self.live
        if (ex is not None and node.cp is not None and node.cp_ex is ex
                and self.live_tids[:len(tids)] == tids and ex.snapshots_ok()):
            rebuilt = ex.rebuilt_steps
            ex.restore(node.cp)
            self.run_.stats.steps += ex.rebuilt_steps - rebuilt
        else:
            if ex is not None:
                ex.close()
            ex = self.live = self._execution(tids)
            self.run_.stats.steps += len(tids)
        self.live_tids = tids
        return ex

    def _note_state(self, ex: Execution) -> None:
        fp = ex.fingerprint()
        if fp is not None:
            self.states.add(fp)

    def _step(self, node: Node, p: int) -> None:
        """Explore thread ``p`` from ``node``: a coordinator node, a leaf, or a task."""
        dpor, r = self.dpor, self.run_
        nodes, events, tids = self.tree.path[id(node)]
        depth = len(events)
        ex = self._at(node, tids)
        rebuilt = ex.rebuilt_steps
        acq = ex.acquiring(p)
        fp = ex.step(p)
        self.live_tids = (*tids, p)
        r.stats.steps += 1 + ex.rebuilt_steps - rebuilt
        if len(self.program.knowledge) != len(self.promoted):
            # this step promoted a stable field (or learnt another fact that changes the
            # steps, stable.py): every node and task so far used the old steps
            raise _Restart
        # the sequential search's race detection, on this node's path
        dpor.stack, dpor.events = nodes, list(events)
        dpor.obj_events = {}
        for i, e in enumerate(events):
            for o in {o for o, _f, _w in e.fp}:
                dpor.obj_events.setdefault(o, []).append(i)
        before = _hints(nodes)
        ev = dpor.event(p, fp, depth, node, acq)
        dpor.events.append(ev)
        for o in {o for o, _f, _w in fp}:
            dpor.obj_events.setdefault(o, []).append(depth)
        node.summary.update((p, i, f, w) for i, f, w in fp)
        dpor.blocked_races(ex, depth, ev, node)
        child_sleep = {q: f for q, f in node.sleep.items() if not wakes(f, fp)}
        done = ended(ex, self.stop_first)
        # started: its subtree will be explored in full (common.CUT_SHORT: a finding cut it)
        node.sleep[p] = CUT_SHORT if done and ex.cut_short() else fp
        follow = set(node.hints.get(p, set()))
        child = (*tids, p)
        start = _Start(tuple(sorted(child_sleep.items())), follow, child, id(node))
        self.started[(id(node), p)] = start
        if done:
            if ex.finding is not None and not self.stop_first:
                dpor.cut_races(ex, depth, ev, node)
            r.leaf(ex, collect=self.collect)
        elif all(t in child_sleep for t in ex.enabled()):
            r.absorb(ex, collect=self.collect)
            r.stats.sleep_blocked += 1
            r.stats.executions += 1
        else:
            r.absorb(ex, collect=self.collect)
            self._note_state(ex)
            tclock = (*node.tclock[:p], ev.clock, *node.tclock[p + 1:])
            if depth + 1 < self.depth:
                cnode = dpor.node(ex, child_sleep, tclock)
                for seq in follow:
                    t = seq[0]
                    if t in cnode.enabled and t not in cnode.sleep:
                        cnode.backtrack.add(t)
                        if len(seq) > 1:
                            cnode.hints.setdefault(t, set()).add(seq[1:])
                self.tree.add(cnode, [*nodes, cnode], dpor.events, child)
                start.node = cnode
            else:
                start.task = True
                self._submit(self._task(start, frozenset(follow)))
        self.tree.touch(nodes)  # race detection may have given them threads
        self._late_hints(nodes, before)

    def _task(self, start: _Start, follow: frozenset[tuple[int, ...]]) -> Task:
        return Task(start.tids, start.sleep, follow, self.visible, self.promoted,
                    self._task_budget(), self.stop_first, self.collect, self.cache,
                    self.search, start.parent, records=fresh_records())

    def _late_hints(self, nodes: list[Node], before: list[dict[int, frozenset[Any]]]
                    ) -> None:
        """Races just applied to ``nodes`` may have left a hint for a thread a node has
        already started (the sequential search, which starts a node's threads one after the
        other, would have started it with the hint): it is followed now."""
        for node, old in zip(nodes, before, strict=True):
            for h, seqs in list(node.hints.items()):
                for seq in seqs - old.get(h, frozenset()):
                    self._late(node, h, seq)

    def _late(self, node: Node, h: int, seq: tuple[int, ...]) -> None:
        """Follow ``seq`` below thread ``h``, started at ``node`` without it."""
        st = self.started.get((id(node), h))
        if st is None or seq in st.follow:
            return  # not started yet (it will be, with the hint), or followed already
        st.follow.add(seq)
        if st.node is not None:
            self._deliver(st.node, seq)
        elif st.task:  # the subtree is (being) explored by a task: another one follows seq
            self._submit(self._task(st, frozenset({seq})))

    def _deliver(self, c: Node, seq: tuple[int, ...]) -> None:
        """What the sequential search does with a hint when it creates node ``c``."""
        t = seq[0]
        if t not in c.enabled or t in c.init_sleep:
            return
        if (id(c), t) in self.started:
            if len(seq) > 1:
                self._late(c, t, seq[1:])
            return
        c.backtrack.add(t)
        self.tree.touch([c])
        if len(seq) > 1:
            c.hints.setdefault(t, set()).add(seq[1:])

    def _task_budget(self) -> Budget:
        b = self.budget
        # past the deadline a task still gets a moment: it stops at once, "budget reached"
        left = None if b.seconds is None else max(1e-3, b.seconds - (
            time.perf_counter() - self.start))
        return Budget(executions=None, seconds=left, max_steps=b.max_steps)

    def _submit(self, task: Task) -> None:
        self.backend.submit(task)
        self.progress.tasks_made += 1
        self.progress.tasks_out += 1
        self._report()

    def _absorb(self, res: TaskResult) -> None:
        """A task is back: its races go to the coordinator's nodes on its path."""
        self.results.append(res)
        merge_records(res.records, self.records)
        self.progress.tasks_done += 1
        self.progress.tasks_out -= 1
        self.progress.executions += res.stats.executions
        self.steps += res.stats.steps
        self.states |= res.fingerprints
        self.shared.add(res.entries)
        res.fingerprints, res.entries = set(), []  # merged: not kept twice
        self.observed = self.observed | res.observed
        if res.promoted - self.promoted:
            self.promotions_changed = True
            self.program.knowledge.learn_all(res.promoted)
        self.cut = self.cut or res.cut
        self.interrupted = self.interrupted or res.interrupted
        # the task's frozen nodes are the coordinator's nodes of its parent's path
        nodes = self.tree.path[res.task.parent][0]
        before = _hints(nodes)
        for rep in res.reports:
            node = nodes[rep[1]]
            if node.full:
                continue
            if rep[0] == "full":
                expand_fully(node)
            else:
                apply_race(node, list(rep[2]), list(rep[3]))
        self.tree.touch(nodes)
        self._late_hints(nodes, before)
        for f in res.findings:
            _keep_shortest(self.run_.findings, f)
        self._report()
        if self.promotions_changed or (self.observed - self.visible and not (
                self.stop_first and self.run_.findings)):
            raise _Restart

    def _report(self) -> None:
        pr = self.progress
        pr.states = len(self.states)
        if self.on_progress is not None:
            self.on_progress(pr)
        show = _PROGRESS[0]
        now = time.perf_counter()
        if show is not None and now - self.shown >= 0.2:
            self.shown = now
            st = Stats(executions=pr.executions + self.run_.stats.executions,
                       states=pr.states, steps=self.steps + self.run_.stats.steps)
            st.workers = (f"{pr.workers} workers ({self.backend.name}): {pr.tasks_done} of "
                          f"{pr.tasks_made} subtrees done, {pr.tasks_out} out")
            show(st, now - self.start)

    def _result(self, coordinator_nodes: int) -> Result:
        r = self.run_
        st = r.stats
        for res in self.results:
            for k in SUMMED:
                setattr(st, k, getattr(st, k) + getattr(res.stats, k))
            st.max_depth = max(st.max_depth, res.stats.max_depth)
            st.caching = st.caching or res.stats.caching
            r.goals |= res.goals
            r.final_states |= res.final_states
            r.violations |= res.violations
            for p, n in res.masked_by.items():
                r.masked_by[p] = r.masked_by.get(p, 0) + n
        st.states = len(self.states)
        # in an order that does not depend on which task finished first
        r.findings = dict(sorted(r.findings.items(), key=lambda kv: _rank(kv[1])))
        r.clock.interrupted = self.interrupted
        stopped = bool(r.findings) and self.stop_first
        elapsed = time.perf_counter() - self.start
        if self.cut or self.interrupted:
            why = (f"interrupted ({INTERRUPTED_BY[0]})" if self.interrupted
                   else f"stopped ({self.lost})" if self.lost else "budget reached")
            coverage = (f"{why} after {st.executions} executions ({elapsed:.1f} s): "
                        "partial, no claim beyond them")
        elif stopped:
            coverage = f"stopped at the first finding, after {st.executions} executions"
        else:
            how = "source-set DPOR with sleep sets"
            if st.caching:
                how += f" and state caching ({st.states} states)"
            coverage = (f"exhaustive: every interleaving up to equivalence ({how}; "
                        f"{self.backend.workers} workers ({self.backend.name}), "
                        f"{self.progress.tasks_made} subtrees below depth {self.depth})")
        return r.result("dpor", coverage, not (self.cut or self.interrupted) and not stopped)


def _hints(nodes: list[Node]) -> list[dict[int, frozenset[Any]]]:
    return [{h: frozenset(v) for h, v in n.hints.items()} for n in nodes]


@dataclass
class _Start:
    """How the coordinator started a thread at a node: the child's sleep set, the hints
    followed below it, the child's schedule, and what explores the child (a coordinator
    node, a task, or nothing: the execution ended there)."""

    sleep: tuple[tuple[int, Footprint], ...]
    follow: set[tuple[int, ...]]
    tids: tuple[int, ...]
    parent: int
    node: Node | None = None
    task: bool = False


class _Restart(Exception):
    """A task observed a new visible field or promoted a stable field."""


def _rank(x: Finding) -> tuple[int, list[str], str, str]:
    return (len(x.schedule), [s.thread for s in x.schedule], x.kind, x.prop)


def _keep_shortest(into: dict[tuple[str, str], Finding], f: Finding) -> None:
    """Keep, per (kind, property), the finding with the shortest schedule (then the
    smallest, thread by thread): the same whichever worker finished first."""
    old = into.get(f.key)
    if old is None or _rank(f) < _rank(old):
        into[f.key] = f

