"""One DPOR search on many workers: the sequential search, with its subtrees handed out.

The coordinator runs source-set DPOR (dpor/) over the first ``depth`` steps of every
execution: the same stack nodes (backtrack sets, sleep sets, reversal hints), the same race
detection, kept as a tree instead of a stack. Where the sequential search would go below
``depth`` it makes a *task* instead: the schedule so far, the sleep set and hints the child
node would get, and the fields invariants read. A worker (workers.py: local processes or
Ray) replays the schedule, freezes the nodes above, and runs the sequential algorithm below
(``SourceDpor(task=...)``), with a table of visited states it keeps from task to task.
Races between an event below the frontier and one above it are not acted on by the worker:
they are sent back (``("race", k, initials, reversal)``, or ``("full", k)`` for a cache
hit's conservative expansion) and the coordinator applies them to its node ``k``
exactly as the sequential search would (:func:`~pfnlab.explore.search.dpor.stack.apply_race`),
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

import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from pfnlab.explore.collect import active as active_records
from pfnlab.explore.collect import fresh_records, merge_records
from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution
from pfnlab.explore.search.common import (
    _PROGRESS,
    CUT_SHORT,
    Budget,
    Result,
    Stats,
    ended,
    wakes,
)
from pfnlab.explore.search.dpor.races import blocked_races, cut_races, event
from pfnlab.explore.search.dpor.search import SourceDpor
from pfnlab.explore.search.dpor.stack import Node, apply_race, expand_fully
from pfnlab.explore.search.parallel.exchange import SharedTable
from pfnlab.explore.search.parallel.outcome import (
    Progress,
    keep_shortest,
    round_result,
)
from pfnlab.explore.search.parallel.tasks import Task, TaskResult, WorkerDied, WorkerLost
from pfnlab.explore.search.parallel.tree import Start, Tree, hints_of

#: how often a search found a node with work its queue had missed (a bug: the search
#: explores it all the same; the tests check this stays 0)
MISSED = [0]


class Coordinator:
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
        #: executions of the search's earlier rounds (the coverage line counts them)
        self.earlier = 0
        self.promoted = program.knowledge.all()
        self.search = uuid.uuid4().hex
        self.dpor = SourceDpor(program, budget, stop_first=stop_first,
                               collect_final_states=collect, cache=False, snapshots=False)
        self.dpor.visible = set(visible)
        self.run_ = self.dpor.r
        self.tree = Tree()
        self.started: dict[tuple[int, int], Start] = {}
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
            return self._result()
        self.dpor.nthreads = n = len(ex.threads)
        if ended(ex, self.stop_first) or not ex.enabled():
            r.leaf(ex, collect=self.collect)
            ex.close()
            return self._result()
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
        return self._result()

    def _loop(self) -> None:
        while True:
            if self.stop_first and self.run_.findings:
                return
            if self.budget.seconds is not None and \
                    time.perf_counter() - self.start >= self.budget.seconds:
                self.cut = True
                self._gather(GRACE)
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

    def _gather(self, grace: float) -> None:
        """The time budget ran out. The tasks out stop at the same deadline (a task's budget
        is the time left when it was made), each with what it covered: take that in (its
        executions, findings and goals count), for ``grace`` seconds at most; a task that
        started late would run on past it, and is dropped when the workers stop."""
        until = time.perf_counter() + grace
        while self.backend.pending():
            left = until - time.perf_counter()
            if left <= 0:
                return
            res = self.backend.next_result(min(left, 0.25))
            if res is None:
                continue
            with suppress(_Restart):  # (what it learnt is of no use: the budget is spent)
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
        before = hints_of(nodes)
        ev = event(dpor, p, fp, depth, node, acq)
        dpor.events.append(ev)
        for o in {o for o, _f, _w in fp}:
            dpor.obj_events.setdefault(o, []).append(depth)
        node.summary.update((p, i, f, w) for i, f, w in fp)
        blocked_races(dpor, ex, depth, ev, node)
        child_sleep = {q: f for q, f in node.sleep.items() if not wakes(f, fp)}
        done = ended(ex, self.stop_first)
        # started: its subtree will be explored in full (common.CUT_SHORT: a finding cut it)
        node.sleep[p] = CUT_SHORT if done and ex.cut_short() else fp
        follow = set(node.hints.get(p, set()))
        child = (*tids, p)
        start = Start(tuple(sorted(child_sleep.items())), follow, child, id(node))
        self.started[(id(node), p)] = start
        if done:
            if ex.finding is not None and not self.stop_first:
                cut_races(dpor, ex, depth, ev, node)
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
                dpor._seed(cnode, node, p)  # (the hints in ``follow``)
                self.tree.add(cnode, [*nodes, cnode], dpor.events, child)
                start.node = cnode
            else:
                start.task = True
                self._submit(self._task(start, frozenset(follow)))
        self.tree.touch(nodes)  # race detection may have given them threads
        self._latehints_of(nodes, before)

    def _task(self, start: Start, follow: frozenset[tuple[int, ...]]) -> Task:
        return Task(start.tids, start.sleep, follow, self.visible, self.promoted,
                    self._task_budget(), self.stop_first, self.collect, self.cache,
                    self.search, start.parent, records=fresh_records())

    def _latehints_of(self, nodes: list[Node], before: list[dict[int, frozenset[Any]]]
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
        before = hints_of(nodes)
        for rep in res.reports:
            node = nodes[rep[1]]
            if node.full:
                continue
            if rep[0] == "full":
                expand_fully(node)
            else:
                apply_race(node, list(rep[2]), list(rep[3]))
        self.tree.touch(nodes)
        self._latehints_of(nodes, before)
        for f in res.findings:
            keep_shortest(self.run_.findings, f)
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
    def _result(self) -> Result:
        return round_result(self.run_, self.results, self.states, cut=self.cut,
                            interrupted=self.interrupted, stop_first=self.stop_first,
                            start=self.start, backend=self.backend,
                            tasks_made=self.progress.tasks_made, depth=self.depth,
                            lost=self.lost, earlier=self.earlier)


#: seconds the coordinator waits, once the time budget is spent, for the tasks out to
#: report what they covered (they stop at the same deadline)
GRACE = 2.0


class _Restart(Exception):
    """A task observed a new visible field or promoted a stable field."""
