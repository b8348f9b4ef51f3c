"""A parallel search's workers as Ray actors, on a local Ray instance or a cluster.

One actor per worker (:class:`Worker`), spread over the cluster's nodes (Ray's SPREAD
scheduling), holds the program and its own tables of visited states from task to task of
a round, as a local worker process does. While a task runs, its actor sends the states it
completes, in batches, to a small relay actor beside the coordinator (an ordered log),
and merges what the other actors sent (ray_exchange.py): states are shared as they
complete, as between local processes.

What makes a lost actor harmless: each batch carries, in the same message, what the task
has found so far (:class:`Partial`: findings, final states, violations, goals, race reports
for the coordinator's nodes), and the relay keeps it until the coordinator has the task's
result. Every state another actor may prune at was explored in full, and what its
exploration found is at the relay. When an actor is lost (its process or node gone, or a
result of it), the coordinator takes from the relay what its unfinished tasks had found,
runs those tasks again on the other actors and starts a new actor in its place; a task's
result, when it comes, carries what its lost runs had found. A relay that is lost makes
the search start again. docs/reductions.md section 12 argues it.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pfnlab.explore.program import Program
from pfnlab.explore.search.parallel.exchange import BATCH
from pfnlab.explore.search.parallel.ray_cluster import ray_init
from pfnlab.explore.search.parallel.ray_exchange import Partial, RayEndpoint, Relay
from pfnlab.explore.search.parallel.ray_partitioned import RayPartitionedEndpoint
from pfnlab.explore.search.parallel.tasks import (
    Task,
    TaskResult,
    WorkerDied,
    WorkerLost,
    run_task,
)
from pfnlab.explore.search.parallel.workers import AHEAD, RETRIES, sendable

#: actors from which the table is partitioned by default: with fewer, each actor holds
#: most of the table anyway (its own states and its share: 2 actors, about 80 %) and the
#: owners' round trips through the relay cost more than they save (3 x 2 on a 2-CPU
#: cluster: 51.7 s partitioned, 45.6 s whole, 51.2 s in one process; docs/performance.md)
PARTITION_FROM = 4
#: seconds a search waits for a new actor when it has no other (the cluster has no CPU
#: free for it: its node is gone and no other node has room)
START_WITHIN = 120.0


class Worker:
    """A Ray actor: one worker of a parallel search (number ``me``, never reused), with
    the whole table (``seat`` None) or the part of it that ``seat`` owns among those
    ``seated`` (seat -> actor)."""

    def __init__(self, program: Program, me: int, relay: Any, batch: int,
                 seat: int | None = None, seated: dict[int, int] | None = None) -> None:
        self.program = program
        self.endpoint: RayEndpoint | RayPartitionedEndpoint
        if seat is None:
            self.endpoint = RayEndpoint(me, relay, batch)
        else:
            self.endpoint = RayPartitionedEndpoint(seat, seated or {}, me, relay, batch)

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
    #: its seat in a partitioned table (None: a whole table)
    seat: int | None = None
    #: the serials of the tasks it has out
    out: set[int] = field(default_factory=set)
    pid: int = 0


class RayWorkers:
    """A parallel search's workers as Ray actors (the module docstring), on a local Ray
    instance with ``workers`` CPUs (``address`` None) or the cluster at ``address`` (at
    most ``workers`` of its CPUs; all of them by default). An actor sends its states
    every ``batch`` completed ones; ``partitioned``: to their owners only, each actor
    keeping a part of the table (ray_partitioned.py), else to every actor; by default
    partitioned from :data:`PARTITION_FROM` actors on."""

    name = "Ray"

    def __init__(self, workers: int | None = None, address: str | None = None,
                 batch: int = BATCH, partitioned: bool | None = None) -> None:
        self.batch = batch
        #: seat -> the actor in it (a partitioned table)
        self.seated: dict[int, int] = {}
        self.ray = ray = ray_init(workers, address)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, min(workers, cpus) if workers else cpus)
        self.partitioned = (self.workers >= PARTITION_FROM if partitioned is None
                            else partitioned)
        self.actors: dict[int, _Actor] = {}
        self.starting: dict[Any, _Actor] = {}
        self.out: dict[Any, tuple[int, _Actor]] = {}
        #: the tasks not yet returned, by serial: the task, its runs lost so far, and
        #: what those runs found
        self.tasks: dict[int, tuple[Task, int, Partial]] = {}
        self.backlog: deque[int] = deque()
        self.relay: Any = None
        self.program_ref: Any = None
        self.serials = 0  # tasks numbered
        self.incarnations = 0  # actors numbered
        #: actors lost in this backend's searches, and relays
        self.lost = 0
        self.relays_lost = 0
        #: lost runs whose batches had reached the relay (what they found carried over)
        self.carried = 0

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
        self.seated = {}
        if self.partitioned:  # every seat taken before any actor sends to another
            for seat in range(self.workers):
                self.seated[seat] = self.incarnations + 1 + seat
                self.ray.get(self.relay.seat.remote(seat, self.seated[seat]))
        for seat in range(self.workers):
            self._new_actor(seat if self.partitioned else None)

    def _new_actor(self, seat: int | None) -> None:
        """Start an actor (in ``seat`` of a partitioned table: taken at the relay first,
        from a lost actor's successor on)."""
        self.incarnations += 1
        me = self.incarnations
        if seat is not None and self.seated.get(seat) != me:
            self.seated[seat] = me
            self.ray.get(self.relay.seat.remote(seat, me))
        cls = self.ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(Worker)
        handle = cls.options(scheduling_strategy="SPREAD").remote(
            self.program_ref, me, self.relay, self.batch, seat, dict(self.seated))
        self.starting[handle.ready.remote()] = _Actor(handle, me, time.monotonic(), seat)

    def submit(self, task: Task) -> None:
        """Queue ``task``: it goes to an actor as soon as one has fewer than ``AHEAD``
        tasks out."""
        self._queue(task, 0, Partial())

    def _queue(self, task: Task, runs: int, found: Partial, first: bool = False) -> None:
        self.serials += 1
        self.tasks[self.serials] = (task, runs, found)
        if first:
            self.backlog.appendleft(self.serials)
        else:
            self.backlog.append(self.serials)
        self._dispatch()

    def _dispatch(self) -> None:
        while self.backlog and self.actors:
            actor = min(self.actors.values(), key=lambda a: (len(a.out), a.me))
            if len(actor.out) >= AHEAD:
                return
            serial = self.backlog.popleft()
            ref = actor.handle.run.remote(serial, self.tasks[serial][0])
            self.out[ref] = (serial, actor)
            actor.out.add(serial)

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
        actor.out.discard(serial)
        _task, _runs, found = self.tasks.pop(serial)
        found.into(result)
        self.relay.done.remote(serial)
        self._dispatch()
        return result

    def _lost(self, actor: _Actor, error: Exception) -> None:
        """``actor`` is gone (or a result of it is): it is stopped, what its unfinished
        tasks found up to their last batch is taken from the relay, those tasks run
        again on the other actors (their results will carry it), and a new actor is
        started in its place. A relay that does not answer makes the search start
        again (``WorkerDied``)."""
        if self.actors.pop(actor.me, None) is None:
            return
        with suppress(Exception):
            self.ray.kill(actor.handle, no_restart=True)
        for ref, (_s, a) in list(self.out.items()):
            if a is actor:
                del self.out[ref]
        again = sorted(actor.out)
        try:
            found = self.ray.get(self.relay.found.remote(again), timeout=60)
        except Exception:
            self._relay_lost()
        self.lost += 1
        for serial in reversed(again):
            task, runs, before = self.tasks.pop(serial)
            if runs >= RETRIES:
                raise WorkerLost(f"a subtree's Ray worker was lost {runs + 1} times "
                                 f"({type(error).__name__}): its node or process gone, or "
                                 "model code ending its process (os._exit)")
            if serial in found:
                before.add(found[serial])
                self.carried += 1
            # under a new number (the lost run's batches stay apart from the new run's)
            self._queue(task, runs + 1, before, first=True)
        n = len(again)
        print(f"pfnlab: a Ray worker was lost ({type(error).__name__}); the {n} "
              f"subtree{'s' if n != 1 else ''} it had out run again on the others",
              file=sys.stderr)
        self._new_actor(actor.seat)

    def _relay_lost(self) -> NoReturn:
        """What the lost tasks found is gone with the relay, and other actors may have
        pruned at their states: the search starts again (``RETRIES`` times at most)."""
        self.relays_lost += 1
        if self.relays_lost > RETRIES:
            raise WorkerLost(f"the relay of the Ray workers was lost {self.relays_lost} "
                             "times")
        print("pfnlab: the relay of the Ray workers was lost; the search starts again",
              file=sys.stderr)
        raise WorkerDied

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
