"""Where the tasks of a parallel search run: local processes (here), or a Ray cluster
(ray_actors.py, connected by ray_cluster.py).

A backend has ``name`` and ``workers``, and is driven by the coordinator (coordinator.py):
``start(program)``, ``submit(task)`` (any number, as the search finds them), ``pending()``
(tasks not yet returned), ``next_result(timeout)`` (the next one to finish, in any order,
or None after ``timeout`` seconds: the coordinator refreshes its progress display) and
``stop()`` (the workers go away; unfinished tasks are dropped).

- :class:`LocalProcesses` forks worker processes at ``start`` (they inherit the program,
  model files loaded with ``--model`` included), hands a task to a worker when it has
  fewer than ``AHEAD`` out, and lets workers share the visited states they complete: each
  to its owner in a table partitioned among them (partitioned.py), or to every other
  worker (exchange.py). A worker that dies (killed, out of memory) makes the search
  start again with new workers, ``RETRIES`` times at most; past that the search stops
  (``WorkerLost``).
- :class:`~.ray_actors.RayWorkers` runs one Ray actor per worker, on a local Ray instance
  or an existing cluster, exchanging visited states as local processes do.

Workers ignore Ctrl-C: the coordinator stops them and reports what was covered.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import replace
from typing import Any, NoReturn

from pfnlab.explore.program import Program
from pfnlab.explore.search.parallel.exchange import Exchange
from pfnlab.explore.search.parallel.forking import refused, signals_held, worker_started
from pfnlab.explore.search.parallel.partitioned import (
    ListQueue,
    PartitionedEndpoint,
    SimulatedEndpoint,
)
from pfnlab.explore.search.parallel.tasks import Task, TaskResult, WorkerDied, WorkerLost, run_task
from pfnlab.explore.search.visited import VisitedTable

#: how many times a dead worker makes the search start again (local processes), or a task
#: whose Ray worker was lost runs again
RETRIES = 2
#: tasks a local worker has out at most: one running, one waiting so that it never
#: waits for the coordinator
AHEAD = 2

_PROGRAM: list[Program] = []  # the program the forked workers inherit


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity: in a container or under
    ``taskset`` fewer than the machine has), else the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS)
        return max(1, os.cpu_count() or 1)


def _init(parent: int, me: int = -1, exchange: Exchange | None = None) -> None:
    worker_started(parent)
    if exchange is not None:
        exchange.attach(me)


def _local_task(task: Task) -> TaskResult:
    try:
        return run_task(_PROGRAM[-1], task)
    except Exception as e:
        raise sendable(e) from None


def sendable(e: Exception) -> Exception:
    """``e`` as it can travel to the coordinator: with the frames of its traceback here
    as ``worker_frames`` ((file, line) pairs, innermost last: the traceback itself does
    not travel), and, when it cannot be pickled and unpickled (an exception class whose
    ``__init__`` takes other arguments than it passes on), as a RuntimeError saying its
    type and message (a failed unpickling would break the pool and read as a dead
    worker)."""
    import pickle
    import traceback

    frames = [(f.filename, f.lineno or 0) for f in traceback.extract_tb(e.__traceback__)]
    out = e
    try:
        pickle.loads(pickle.dumps(e))
    except Exception:
        out = RuntimeError(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
    out.worker_frames = frames  # type: ignore[attr-defined]
    return out


class InProcess:
    """Tasks run in this process when the coordinator asks for a result, in an order drawn
    from ``seed`` (``None``: submission order), each on one of ``workers`` simulated
    workers (own tables of visited states, the entries other workers completed attached
    to the task): tests use it to show the result does not depend on the order tasks
    finish in, nor on which worker saw which state. With ``late``, part of those entries
    arrive only while the task runs, at completions drawn from ``seed``, as local worker
    processes receive them (exchange.py): then a state can be on the task's stack when
    another worker's entry for it arrives."""

    name = "in process"

    def __init__(self, workers: int = 1, seed: int | None = None, late: bool = False,
                 partitioned: bool = False) -> None:
        import random

        self.late = late
        self.workers = workers
        self.rng = random.Random(seed) if seed is not None else None
        #: a table partitioned among the simulated workers (partitioned.py), their
        #: messages delivered as they would be between processes running concurrently
        self.endpoints: list[SimulatedEndpoint] = []
        if partitioned:
            inboxes = [ListQueue() for _ in range(workers)]
            rng = random.Random(seed)
            for w in range(workers):
                self.endpoints.append(SimulatedEndpoint(w, inboxes, self.endpoints, rng))
        self.queue: list[Task] = []
        self.program: Program | None = None
        self.shared: Any = None
        self.seen = [0] * workers

    def start(self, program: Program, shared: Any = None) -> None:
        """Remember ``program``."""
        self.program = program
        self.shared = shared
        self.seen = [0] * self.workers

    def submit(self, task: Task) -> None:
        """Queue ``task``."""
        self.queue.append(task)

    def pending(self) -> int:
        """Tasks queued."""
        return len(self.queue)

    def next_result(self, timeout: float | None = None) -> TaskResult | None:
        """Run one queued task (a random one when seeded)."""
        assert self.program is not None
        i = self.rng.randrange(len(self.queue)) if self.rng is not None else 0
        w = self.rng.randrange(self.workers) if self.rng is not None else i % self.workers
        task = replace(self.queue.pop(i), worker=w)
        if self.endpoints:  # (the endpoints share the entries: none come with the task)
            return run_task(self.program, task, self.endpoints[w])
        late = None
        if self.shared is not None:
            entries, self.seen[w] = self.shared.since(self.seen[w])
            if self.late and self.rng is not None and entries:
                k = self.rng.randrange(len(entries) + 1)
                entries, late = entries[:k], _Late(entries[k:], self.rng)
            task = replace(task, entries=entries)
        return run_task(self.program, task, late)

    def stop(self) -> None:
        """Drop what is queued."""
        self.queue.clear()


class _Late:
    """An endpoint (exchange.py) that merges ``entries`` into the task's table in random
    portions as the search completes states."""

    publishes = False  # the task's result carries its entries (InProcess shares them)
    poll_every = 1

    def __init__(self, entries: tuple[Any, ...], rng: Any) -> None:
        self.entries = list(entries)
        self.rng = rng
        self.table = VisitedTable()
        self.arrived: list[tuple[int, frozenset[int]]] = []

    def begin(self, search: str, caches: dict[Any, VisitedTable], visible: Any) -> None:
        """Remember the task's table."""
        self.table = caches.setdefault(visible, VisitedTable())

    def visited_new(self, fp: int) -> None:
        """Nothing to ask."""

    def completed(self, fp: int) -> None:
        """Now and then, merge some of what is left."""
        self._now_and_then()

    def _now_and_then(self) -> None:
        if self.entries and self.rng.random() < 0.2:
            k = self.rng.randrange(1, len(self.entries) + 1)
            self.table.merge(self.entries[:k])
            self.arrived += [(fp, sleep) for fp, sleep, _s in self.entries[:k]]
            del self.entries[:k]

    def counters(self) -> dict[str, int]:
        """Nothing exchanged (the entries came with the task)."""
        return {}

    def arrivals(self) -> list[tuple[int, frozenset[int]]]:
        """What was merged since the last call (the search may cut a node there), and now
        and then a portion more."""
        self._now_and_then()
        out, self.arrived = self.arrived, []
        return out

    def end(self) -> None:
        """Nothing to publish."""


class LocalProcesses:
    """Tasks on ``workers`` forked local processes, one executor each: a task waits at
    the coordinator until a worker has fewer than ``AHEAD`` out. Workers share the
    visited states they complete while they run: with ``partitioned`` (the default) each
    state goes to the worker that owns it, which answers the others' questions about it
    (partitioned.py); without, every worker gets every state (exchange.py) and keeps the
    whole table."""

    name = "local processes"

    def __init__(self, workers: int, partitioned: bool = True) -> None:
        if workers < 1:
            raise ValueError("--jobs must be at least 1")
        self.workers = workers
        #: the table of visited states partitioned among the workers (partitioned.py),
        #: else every worker's own whole copy
        self.partitioned = partitioned
        self.retried = 0
        self.pools: list[ProcessPoolExecutor] = []
        self.futures: dict[Future[TaskResult], tuple[Task, int]] = {}
        self.backlog: deque[Task] = deque()
        self.exchange: Exchange | None = None

    def start(self, program: Program, shared: Any = None) -> None:
        """Fork the workers (they inherit ``program`` and the exchange's inboxes);
        :class:`WorkersNotStarted` when the system refuses them (too many open files,
        processes, or too little memory)."""
        _PROGRAM.append(program)
        self.pools = []
        why = ""
        try:
            self.exchange = Exchange(self.workers, mp.get_context("fork"),
                                     PartitionedEndpoint if self.partitioned else None)
            for w in range(self.workers):
                self.pools.append(self._pool(w))
        except OSError as e:
            why = str(e.strerror or e)
        if why:
            # stopped and raised here, past the except block: the OSError's traceback holds
            # the half-started pool and its pipes, and at the limit of open files nothing
            # could be done with them open, not even the import that prints the message
            self.stop()
            import gc

            gc.collect()  # a pool half started is cyclic garbage holding its pipes
            raise refused(self.workers, why)

    def _pool(self, w: int) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(1, mp_context=mp.get_context("fork"), initializer=_init,
                                   initargs=(os.getpid(), w, self.exchange))
        with signals_held():  # the first submit forks the worker (forking.py)
            pool.submit(int)
        return pool

    def submit(self, task: Task) -> None:
        """Queue ``task``: it goes to a worker as soon as one has fewer than ``AHEAD``
        tasks out (a task handed to a busy worker early would wait there while another
        worker idles)."""
        assert self.pools, "start() first"
        self.backlog.append(task)
        self._dispatch()

    def _dispatch(self) -> None:
        out = [0] * self.workers
        for _t, w in self.futures.values():
            out[w] += 1
        while self.backlog:
            w = min(range(self.workers), key=lambda k: (out[k], k))
            if out[w] >= AHEAD:
                return
            task = self.backlog.popleft()
            self.futures[self.pools[w].submit(_local_task, task)] = (task, w)
            out[w] += 1

    def pending(self) -> int:
        """Tasks submitted and not yet returned by ``next_result``."""
        return len(self.futures) + len(self.backlog)

    def next_result(self, timeout: float | None = None) -> TaskResult | None:
        """The next task to finish; None if none finished within ``timeout`` seconds. A
        dead worker raises ``WorkerDied`` (the search starts again) or, past ``RETRIES``,
        ``WorkerLost``."""
        done, _ = wait(set(self.futures), timeout=timeout, return_when=FIRST_COMPLETED)
        if not done:
            return None
        fut = next(iter(done))
        self.futures.pop(fut)
        try:
            res = fut.result()
        except BrokenProcessPool:
            self._recover()
        self._dispatch()
        return res

    def _recover(self) -> NoReturn:
        """A worker died. It may have published states of a task whose result (the
        findings, final states and races of those states' subtrees) is lost, and the
        other workers may prune at them from now on; running its tasks again would not
        bring that back. So the search starts again (``WorkerDied``), with new workers
        and empty tables, ``RETRIES`` times at most; past that it stops (``WorkerLost``)."""
        self.retried += 1
        if self.retried > RETRIES:
            raise WorkerLost(f"a worker process died {self.retried} times: killed, out of "
                             "memory, or model code ending its process (os._exit)")
        print("pfnlab: a worker process died; the search starts again", file=sys.stderr)
        raise WorkerDied

    def stop(self) -> None:
        """Stop the workers now."""
        for pool in self.pools:
            _shutdown(pool)
        self.pools = []
        self.futures.clear()
        self.backlog.clear()
        if self.exchange is not None:
            self.exchange.close()
            self.exchange = None
        if _PROGRAM:
            _PROGRAM.pop()


def _shutdown(ex: ProcessPoolExecutor) -> None:
    """Stop the pool's processes now (queued tasks are cancelled, running ones killed)."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    results = getattr(ex, "_result_queue", None)  # (shutdown forgets it)
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.kill()
    for p in procs:
        p.join(timeout=5)
    # A worker killed while it wrote a result leaves the pool's manager thread reading a
    # partial message for ever, and the interpreter's exit joins that thread (a check that
    # printed nothing and never ended, at a --seconds deadline). With the workers gone,
    # closing this process's end of the result pipe gives the reader end-of-file.
    writer = getattr(results, "_writer", None)
    if writer is not None:
        with suppress(OSError):
            writer.close()
