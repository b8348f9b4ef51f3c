"""A parallel search's workers as Ray actors, on a local Ray instance or a cluster.

One actor per worker (:class:`Worker`), spread over the cluster's nodes (Ray's SPREAD
scheduling), holds the program and its own tables of visited states from task to task of
a round, as a local worker process does. While a task runs, its actor sends the states it
completes, in batches, to a small :class:`Relay` actor (an ordered log) and takes in what
the other actors sent (:class:`RayEndpoint`, the Ray side of exchange.py's endpoint).

What differs from local processes is when an entry may be used by another worker: only
once the task that completed it is *committed*, that is, once the coordinator holds that
task's result and the results of every task its actor ran before it (the relay logs a
commit, the receivers merge the entries they held back). So every entry another worker
prunes with is backed by a result the coordinator has: findings, final states and races
of its subtree included. An actor that is lost (its process or its node gone, or a
result of it lost) is therefore only a lost cache: the tasks it had out, whose results
never came, run again on the other actors (:meth:`RayWorkers._lost`), a new actor is
started in its place, and no other worker ever used an entry of those tasks.
docs/reductions.md section 12 argues it.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from pfnlab.explore.program import Program
from pfnlab.explore.search.parallel.exchange import BATCH, Endpoint, Shared
from pfnlab.explore.search.parallel.ray_cluster import ray_init
from pfnlab.explore.search.parallel.tasks import Task, TaskResult, WorkerLost, run_task
from pfnlab.explore.search.parallel.workers import AHEAD, RETRIES, sendable

#: seconds a search waits for a new actor when it has no other (the cluster has no CPU
#: free for it: its node is gone and no other node has room)
START_WITHIN = 120.0


class Relay:
    """The log of what the actors send, in the order it arrives: entries of a task
    (``("entries", serial, message)``) and commits (``("commit", serials)``). Each actor
    reads it from where it stopped."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    def put(self, item: tuple[Any, ...]) -> None:
        """Append ``item``."""
        self.log.append(item)

    def since(self, version: int) -> tuple[list[tuple[Any, ...]], int]:
        """What was logged since ``version``, and the version now."""
        return self.log[version:], len(self.log)


class RayEndpoint(Endpoint):
    """An actor's side of the exchange: completed states go to the relay in batches,
    tagged with the task (``serial``); another actor's entries are merged once their
    task is committed, held back until then. Reading the relay never waits: a read is
    sent, and taken when it has come back."""

    def __init__(self, me: int, relay: Any) -> None:
        super().__init__(me, [])
        self.relay = relay
        self.serial = 0
        self.version = 0
        self.reading: Any = None
        self.committed: set[int] = set()
        self.held: dict[int, list[tuple[Any, list[Shared]]]] = {}

    def completed(self, fp: int) -> None:
        """Publish in batches, and take in what has come."""
        self.out.append(fp)
        if len(self.out) >= BATCH:
            self.publish()
            self.drain()

    def publish(self) -> None:
        """Send the completed states collected so far to the relay (without waiting)."""
        msg = self.encode()
        if msg is not None and self.relay is not None:
            self.relay.put.remote(("entries", self.serial, msg))

    def drain(self) -> None:
        """Take what the last read of the relay brought, and send the next read."""
        import ray

        if self.relay is None:
            return
        if self.reading is not None:
            ready, _ = ray.wait([self.reading], timeout=0)
            if not ready:
                return
            try:
                items, self.version = ray.get(self.reading)
            except ray.exceptions.RayError:  # the relay is gone: no more exchange (the
                self.relay = self.reading = None  # entries were only a cache)
                return
            for item in items:
                self._take(item)
        self.reading = self.relay.since.remote(self.version)

    def _take(self, item: tuple[Any, ...]) -> None:
        if item[0] == "commit":
            for serial in item[1]:
                self.committed.add(serial)
                for visible, entries in self.held.pop(serial, []):
                    self.merge(visible, entries)
            return
        _kind, serial, msg = item
        if msg[2] == self.me:  # its own: in its table already
            return
        search, visible, entries = self.decode(msg)
        if search != self.search:
            return
        if serial in self.committed:
            self.merge(visible, entries)
        else:
            self.held.setdefault(serial, []).append((visible, entries))


class Worker:
    """A Ray actor: one worker of a parallel search (number ``me``, never reused)."""

    def __init__(self, program: Program, me: int, relay: Any) -> None:
        self.program = program
        self.endpoint = RayEndpoint(me, relay)

    def ready(self) -> int:
        """Its process id, once it has started."""
        return os.getpid()

    def run(self, serial: int, task: Task) -> TaskResult:
        """Explore ``task`` (the backend's number ``serial``)."""
        self.endpoint.serial = serial
        try:
            return run_task(self.program, task, self.endpoint)
        except Exception as e:
            raise sendable(e) from None


@dataclass
class _Actor:
    """The backend's record of one actor."""

    handle: Any
    me: int
    started: float
    #: the serials of the tasks submitted to it, in order, and those whose result is in
    order: list[int] = field(default_factory=list)
    received: set[int] = field(default_factory=set)
    #: how many of ``order`` are committed
    committed: int = 0
    pid: int = 0


class RayWorkers:
    """A parallel search's workers as Ray actors (the module docstring), on a local Ray
    instance with ``workers`` CPUs (``address`` None) or the cluster at ``address`` (at
    most ``workers`` of its CPUs; all of them by default)."""

    name = "Ray"

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        self.ray = ray = ray_init(workers, address)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, min(workers, cpus) if workers else cpus)
        self.actors: dict[int, _Actor] = {}
        self.starting: dict[Any, _Actor] = {}
        self.out: dict[Any, tuple[int, _Actor]] = {}
        self.tasks: dict[int, tuple[Task, int]] = {}
        self.backlog: deque[int] = deque()
        self.relay: Any = None
        self.program_ref: Any = None
        self.serials = 0  # tasks numbered
        self.incarnations = 0  # actors numbered
        #: actors lost in this backend's searches
        self.lost = 0

    def start(self, program: Program, shared: Any = None) -> None:
        """Ship ``program`` to the cluster (model files' modules by value) and start the
        relay and one actor per worker."""
        from ray import cloudpickle

        for name, mod in list(sys.modules.items()):
            if name.startswith("pfnlab_model_") and mod is not None:
                cloudpickle.register_pickle_by_value(mod)
        ray = self.ray
        self.program_ref = ray.put(program)
        # the relay beside the coordinator (a node that goes takes the search with it)
        here = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=True)
        self.relay = ray.remote(num_cpus=0)(Relay).options(
            scheduling_strategy=here).remote()
        for _ in range(self.workers):
            self._new_actor()

    def _new_actor(self) -> None:
        self.incarnations += 1
        cls = self.ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(Worker)
        handle = cls.options(scheduling_strategy="SPREAD").remote(
            self.program_ref, self.incarnations, self.relay)
        self.starting[handle.ready.remote()] = _Actor(handle, self.incarnations,
                                                      time.monotonic())

    def submit(self, task: Task) -> None:
        """Queue ``task``: it goes to an actor as soon as one has fewer than ``AHEAD``
        tasks out."""
        self.serials += 1
        self.tasks[self.serials] = (task, 0)
        self.backlog.append(self.serials)
        self._dispatch()

    def _dispatch(self) -> None:
        out = {a.me: len(a.order) - len(a.received) for a in self.actors.values()}
        while self.backlog and out:
            me = min(out, key=lambda k: (out[k], k))
            if out[me] >= AHEAD:
                return
            serial = self.backlog.popleft()
            actor = self.actors[me]
            ref = actor.handle.run.remote(serial, self.tasks[serial][0])
            self.out[ref] = (serial, actor)
            actor.order.append(serial)
            out[me] += 1

    def pending(self) -> int:
        """Tasks submitted and not yet returned."""
        return len(self.tasks)

    def next_result(self, timeout: float | None = None) -> TaskResult | None:
        """The next task to finish (None if none did within ``timeout`` seconds, or an
        actor started or was lost meanwhile). A task whose actor was lost runs again on
        another; past ``RETRIES`` runs, ``WorkerLost``."""
        from ray.exceptions import RayError, RayTaskError

        ray = self.ray
        if not self.actors and self.starting and min(
                a.started for a in self.starting.values()) < time.monotonic() - START_WITHIN:
            raise WorkerLost(f"no Ray worker could start within {START_WITHIN:.0f} s (the "
                             "cluster has no CPU free for one)")
        done, _ = ray.wait([*self.out, *self.starting], num_returns=1, timeout=timeout)
        if not done:
            return None
        ref = done[0]
        if ref in self.starting:
            actor = self.starting.pop(ref)
            try:
                actor.pid = ray.get(ref)
            except RayError as e:
                if not self.actors and not self.starting:
                    raise WorkerLost(f"no Ray worker could start: {e}") from None
                return None
            self.actors[actor.me] = actor
            self._dispatch()
            return None
        serial, actor = self.out.pop(ref)
        try:
            result: TaskResult = ray.get(ref)
        except RayTaskError:
            raise  # the model's exception, as the sequential search raises it
        except RayError as e:  # the actor's process or node is gone, or the result
            self._lost(actor, e)
            return None
        del self.tasks[serial]
        actor.received.add(serial)
        self._commit(actor)
        self._dispatch()
        return result

    def _commit(self, actor: _Actor) -> None:
        """Commit the tasks of ``actor`` whose result is in and that of every task it ran
        before them: the other actors may now use their entries."""
        first = actor.committed
        while actor.committed < len(actor.order) and \
                actor.order[actor.committed] in actor.received:
            actor.committed += 1
        if actor.committed > first:
            self.relay.put.remote(("commit", tuple(actor.order[first:actor.committed])))

    def _lost(self, actor: _Actor, error: Exception) -> None:
        """``actor`` is gone (or a result of it is): it is stopped, the tasks it had out
        run again on the other actors, and a new actor is started in its place. Its
        entries were never used by another actor unless committed (backed by results
        the coordinator holds); those of the tasks run again are never committed."""
        if self.actors.pop(actor.me, None) is None:
            return
        with suppress(Exception):
            self.ray.kill(actor.handle, no_restart=True)
        again = [s for s in actor.order if s not in actor.received]
        for ref, (_s, a) in list(self.out.items()):
            if a is actor:
                del self.out[ref]
        for serial in reversed(again):
            task, runs = self.tasks.pop(serial)
            if runs >= RETRIES:
                raise WorkerLost(f"a subtree's Ray worker was lost {runs + 1} times "
                                 f"({type(error).__name__}): its node or process gone, or "
                                 "model code ending its process (os._exit)")
            # under a new number: what the lost run sent is never committed
            self.serials += 1
            self.tasks[self.serials] = (task, runs + 1)
            self.backlog.appendleft(self.serials)
        self.lost += 1
        n = len(again)
        print(f"pfnlab: a Ray worker was lost ({type(error).__name__}); the {n} "
              f"subtree{'s' if n != 1 else ''} it had out run again on the others",
              file=sys.stderr)
        self._new_actor()
        self._dispatch()

    def stop(self) -> None:
        """Stop the actors and the relay (what is still running is dropped)."""
        for actor in [*self.actors.values(), *self.starting.values()]:
            with suppress(Exception):
                self.ray.kill(actor.handle, no_restart=True)
        if self.relay is not None:
            with suppress(Exception):
                self.ray.kill(self.relay, no_restart=True)
        self.relay = None
        self.actors.clear()
        self.starting.clear()
        self.out.clear()
        self.tasks.clear()
        self.backlog.clear()
