"""A parallel search's task: the sequential search below a frozen prefix (a worker's part).

The coordinator (coordinator.py) runs source-set DPOR over the first steps of every
execution and hands out each subtree below its frontier as a :class:`~.tasks.Task`: the
schedule reaching its root, the root's sleep set and hints, the visible fields and what
is known of the program. :class:`TaskDpor` is the sequential algorithm (dpor/) run from
that root: the prefix is replayed and *frozen* (its nodes are placeholders; a race with
one is reported to the coordinator, which decides), one visibility round is run (a field
observed that no step treated as visible ends the task: the coordinator starts again), the
worker's table of visited states is kept from task to task of the same round, and the
states completed here are shared with the other workers (exchange.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution, Footprint
from pfnlab.explore.search.common import Clock
from pfnlab.explore.search.dpor.races import scan, summary_races
from pfnlab.explore.search.dpor.search import SourceDpor
from pfnlab.explore.search.dpor.stack import Node
from pfnlab.explore.search.visited import VisitedTable


class TaskDpor(SourceDpor):
    """Source-set DPOR of one task's subtree (module docstring)."""

    single_round = True

    def __init__(self, program: Program, task: Any, *,
                 caches: dict[frozenset[tuple[int, str]], VisitedTable] | None = None,
                 pool: dict[Any, Any] | None = None) -> None:
        super().__init__(program, task.budget, cache=task.cache, stop_first=task.stop_first,
                         collect_final_states=task.collect)
        self.task = task
        self.nfrozen = len(task.prefix)
        #: fingerprints whose entry a finished subtree completed (shared with the others)
        self.completed: set[int] = set()
        #: told every state the task completes (exchange.py: published to other workers)
        self.on_complete: Callable[[int], None] | None = None
        #: fingerprints this task's search added to the table (its new states)
        self.inserted: set[int] = set()
        #: the worker's tables of visited states, kept across its tasks of one round, one
        #: per set of visible fields (a summary is only valid for the visibility it was
        #: explored with); None: this task's own
        self.caches = caches
        #: the worker's execution kept from task to task (with its root checkpoint), so
        #: that its step memo carries over (tasks.py); None: a fresh one per task
        self.pool = pool
        #: told every state the task explores first (a partitioned table asks its owner)
        self.on_new: Callable[[int], None] | None = None
        #: the (fingerprint, initial sleep set) of the completed states other workers sent
        #: since the last call (exchange.py): a stack node among them is cut
        self.arrivals: Callable[[], list[tuple[int, frozenset[int]]]] | None = None
        #: search-loop iterations between two looks at arrivals (the endpoint's choice)
        self.poll_every = 32
        self._ticks = 0
        #: stack nodes cut because another worker completed their state
        self.cuts = 0

    def _initial_visible(self) -> set[tuple[int, str]]:
        return set(self.task.visible)

    def _table(self) -> VisitedTable:
        if self.caches is None:
            return VisitedTable()
        return self.caches.setdefault(frozenset(self.visible), VisitedTable())

    def _visit(self, fp: int, init_sleep: frozenset[int]) -> None:
        if self.visited.visit(fp, init_sleep):
            self.inserted.add(fp)
            if self.on_new is not None:
                self.on_new(fp)

    def _between_steps(self) -> None:
        """Every ``poll_every`` iterations: take in what other workers completed, and cut the
        shallowest stack node whose state one of them explored in full with no larger a
        sleep set (:meth:`_cut`)."""
        if self.arrivals is None:
            return
        self._ticks += 1
        if self._ticks % self.poll_every:
            return
        arrived = self.arrivals()
        if not arrived:
            return
        depth_of: dict[int, int] = {}
        for d in range(len(self.stack) - 1, self.nfrozen, -1):  # the shallowest wins
            fp = self.stack[d].fingerprint
            if fp is not None:
                depth_of[fp] = d
        best = -1
        for fp, sleep in arrived:
            d = depth_of.get(fp, -1)
            if d > 0 and sleep <= self.stack[d].init_sleep and (best < 0 or d < best):
                best = d
        if best > 0:
            self._cut(best)

    def _cut(self, d: int) -> None:
        """Stack node ``d`` (not the task's root) is at a state another worker explored
        in full, starting with a sleep set contained in the node's: handle it as the cache
        hit the sequential search would have had, had that entry been in the table when
        the node was reached (its summary's races with the prefix; the thread that led to
        it asleep at its parent), and abandon the nodes above it, whose states lie in the
        subtree that exploration covered. What was explored below the node so far stays
        explored (its races added backtrack points: more, never less) and its events join
        the parent's summary. docs/reductions.md section 12."""
        stack = self.stack
        while len(stack) - 1 > d:  # abandoned: not completed, their entries stay open
            node = stack.pop()
            self._undo_event()
            stack[-1].summary |= node.summary
        node = stack.pop()
        fp = node.fingerprint
        assert fp is not None
        entry = self.visited.lookup(fp)
        assert entry is not None and entry.summary is not None
        ev = self.events[-1]
        parent = stack[-1]
        parent.summary |= node.summary
        parent.summary |= entry.summary
        summary_races(self, entry.summary, d, ev, parent)
        self.visited.complete(fp, frozenset(node.summary))
        self._undo_event()
        parent.sleep[parent.cur] = ev.fp
        self.stats.pruned += 1
        self.stats.executions += 1
        self.cuts += 1
        self.ex_depth = -1

    def _completed(self, fp: int) -> None:
        self.completed.add(fp)
        if self.on_complete is not None:
            self.on_complete(fp)

    def _interrupted(self) -> bool:
        # the coordinator starts again with the new visible field
        return not self.observed <= self.visible

    def _round(self, clock: Clock) -> bool:
        """Replay the task's prefix, freeze its nodes, explore below it."""
        task = self.task
        fps: list[Footprint] = []
        acqs: list[int] = []
        ex = self._execution(list(task.prefix), fps, acqs)
        self.nthreads = n = len(ex.threads)
        self.stats.caching = self.cache_on and ex.hashable
        if len(fps) < len(task.prefix) or ex.finding is not None:
            # the prefix did not replay, or a check found something at its end that the
            # coordinator's did not: see _diverged
            self._diverged(ex, task.prefix[len(fps)] if len(fps) < len(task.prefix) else -1,
                           len(fps))
            return False
        tclock = tuple(tuple(0 for _ in range(n)) for _ in range(n))
        for i, (t, fp) in enumerate(zip(task.prefix, fps, strict=True)):
            ev, _races = scan(self, t, fp, tclock[t], None)  # races: the coordinator's
            ev.acq = acqs[i]
            self.stack.append(Node([], {}, tclock, None))  # frozen: a placeholder
            self.events.append(ev)
            for o in {o for o, _f, _w in fp}:
                self.obj_events.setdefault(o, []).append(i)
            tclock = (*tclock[:t], ev.clock, *tclock[t + 1:])
        fpr = ex.fingerprint() if self.cache_on else None
        root = self.node(ex, dict(task.sleep), tclock, fpr)
        if fpr is not None:  # explored here whatever the table says; its summary is kept
            self._visit(fpr, root.init_sleep)
        for seq in task.follow:
            t = seq[0]
            if t in root.enabled and t not in root.sleep:
                root.backtrack.add(t)
                if len(seq) > 1:
                    root.hints.setdefault(t, set()).add(seq[1:])
        self.stack.append(root)
        self.ex, self.ex_depth = ex, self.nfrozen
        return self._loop(clock)

    def _execution(self, prefix: list[int], fps: list[Footprint],
                   acqs: list[int]) -> Execution:
        """The execution at the end of a task's ``prefix`` (its steps' footprints go to
        ``fps``, the locks they began by taking to ``acqs``): the worker's kept one,
        restored to its initial state and stepped along the prefix, when it was made for
        the same visible fields and promotions (its memo and rebuilt threads carry over;
        restoring gives the state a re-execution gives, snapshot.py); else a
        re-execution, kept for the next task."""
        pool = self.pool
        key = (frozenset(self.visible), len(self.program.knowledge))
        got = pool.get(key) if pool is not None else None
        if got is None or got[0].program is not self.program or not got[0].snapshots_ok():
            # (another unpickled copy of the program, whose promotions
            # are its own: an execution of another copy would take other steps)
            # as replay_tids makes it: checks off along the prefix (they ran when the
            # coordinator found it), on from its end
            ex = Execution(self.program, check_invariants=False, goals_reached=self.r.goals,
                           max_steps=self.budget.max_steps, visible=self.visible,
                           observed=self.observed, snapshots=self.snapshots, memo=self.memo)
            if pool is not None and ex.snapshots_ok() and ex.finding is None:
                for old, _cp in pool.values():
                    old.close()
                pool.clear()
                pool[key] = (ex, ex.checkpoint())
        else:
            ex, root = got
            ex.restore(root)
            # this task's search: its goals, the fields its checks read
            ex.goals_reached, ex.observed, ex.visible = self.r.goals, self.observed, \
                self.visible
            ex.check_on = False
        self.r.goal_names = [g.name for g in ex.instance.goals]
        for tid in prefix:
            if tid not in ex.enabled():  # another path than the coordinator's: _round
                return ex
            acqs.append(ex.acquiring(tid))
            fps.append(ex.step(tid))
        ex.enable_checks()
        return ex

    def _diverged(self, ex: Execution, tid: int, done: int) -> None:
        """The task's prefix did not replay here: thread ``tid`` could not take its step
        after ``done`` steps, or (``tid`` -1) the checks at its end found what they did
        not find in the coordinator's process. The prefix is a path the coordinator's
        process took, so the model does something else in this process (it reads the
        process id, the environment, a global that changed since the fork). When the
        path ended with a finding here (a thread or a check raised), that finding is
        this task's result, for the coordinator to report (its trace will not replay
        there, and says so); otherwise the search cannot go on."""
        if ex.finding is not None:
            self._leaf(ex)
            self._execution_ended(ex)
            return
        name = ex.threads[tid].name
        raise RuntimeError(
            f"the model takes another path in a worker process than in the process that "
            f"started the search (thread {name} cannot take step {done + 1} of the "
            "execution there): a model must do the same on every run, whatever the process "
            "(not read the process id, the environment, or state left from before the "
            "fork); --jobs 1 runs the search in one process")
