"""Visited states shared between Ray actors while tasks run, with what each task found.

An actor's :class:`RayEndpoint` (exchange.py's endpoint, over Ray) sends the states its
task completes, in batches, to the :class:`Relay` actor beside the coordinator, an ordered
log every actor reads from where it stopped, and merges what the others sent. Each batch
carries, in the same message, what the task has found so far (:class:`Partial`), which
the relay keeps until the coordinator has the task's result: when an actor is lost, its
unfinished tasks run again carrying what their lost runs found (ray_actors.py;
docs/reductions.md section 12).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from pfnlab.explore.findings import Finding
from pfnlab.explore.search.parallel.exchange import BATCH, Endpoint
from pfnlab.explore.search.parallel.tasks import TaskResult

#: search-loop iterations between two looks of an actor at the relay (local workers: 32)
RAY_POLL_EVERY = 256


@dataclass
class Partial:
    """What a task found up to a batch it sent: what is new since its previous batch
    (findings, final states, violations, race reports) and what it has so far (goals,
    masked checks, fields read)."""

    findings: list[Finding] = field(default_factory=list)
    final_states: set[Any] = field(default_factory=set)
    violations: set[tuple[str, str, str]] = field(default_factory=set)
    reports: list[tuple[Any, ...]] = field(default_factory=list)
    goals: set[str] = field(default_factory=set)
    masked_by: dict[str, int] = field(default_factory=dict)
    observed: frozenset[tuple[int, str]] = frozenset()

    def add(self, other: Partial) -> None:
        """Take ``other`` (a later batch, or another run's) in."""
        self.findings += other.findings
        self.final_states |= other.final_states
        self.violations |= other.violations
        self.reports += other.reports
        self.goals |= other.goals
        for p, n in other.masked_by.items():
            self.masked_by[p] = max(self.masked_by.get(p, 0), n)
        self.observed |= other.observed

    def into(self, res: TaskResult) -> None:
        """Add to ``res`` (a task's result) what its lost runs found."""
        res.findings += self.findings
        res.final_states |= self.final_states
        res.violations |= self.violations
        res.reports += self.reports
        res.goals |= self.goals
        for p, n in self.masked_by.items():
            res.masked_by[p] = max(res.masked_by.get(p, 0), n)
        res.observed |= self.observed


class Relay:
    """What the actors send each other, and what each unfinished task found up to its
    last batch (:class:`Partial`), until the coordinator has its result.

    With a whole table in every actor (:class:`RayEndpoint`), a log of the states the
    actors send, in the order it arrives, which each actor reads from where it stopped.
    With a partitioned table (ray_partitioned.py), a mailbox per *seat* (an owner of
    fingerprints: ``partitioned.owner_of``), emptied as its actor reads it; the relay
    keeps no state. A seat is taken by one actor at a time: when a lost actor's seat is
    taken by a new one, what was sent to or by the lost one is dropped (the numbers
    its sets were coded with die with it), as is whatever is sent to it later."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.partials: dict[int, Partial] = {}
        self.finished: set[int] = set()
        #: seat -> the actor (its number) in it, and its mailbox: (sender, message)
        self.seated: dict[int, int] = {}
        self.boxes: dict[int, list[tuple[int, tuple[Any, ...]]]] = {}

    def ready(self) -> int:
        """Its process id, once it has started."""
        return os.getpid()

    def put(self, serial: int, msg: tuple[Any, ...], partial: Partial) -> None:
        """Task ``serial``'s batch: ``msg`` for the others, ``partial`` kept (unless the
        coordinator has the task's result already: the batch came after it)."""
        if serial not in self.finished:
            self.partials.setdefault(serial, Partial()).add(partial)
        self.log.append((serial, msg))

    def seat(self, seat: int, actor: int) -> None:
        """Actor ``actor`` takes seat ``seat`` (before it sends or reads anything)."""
        old = self.seated.get(seat)
        self.seated[seat] = actor
        self.boxes[seat] = []
        if old is not None:
            for box in self.boxes.values():
                box[:] = [m for m in box if m[0] != old]

    def post(self, serial: int, seat: int, actor: int,
             parcels: list[tuple[int, int, tuple[Any, ...]]], partial: Partial) -> None:
        """Task ``serial``'s messages from actor ``actor`` in ``seat``: ``(seat, actor,
        message)`` each, delivered if that actor is still in that seat; ``partial`` kept
        as :meth:`put` keeps it."""
        if serial not in self.finished:
            self.partials.setdefault(serial, Partial()).add(partial)
        if self.seated.get(seat) != actor:
            return  # from an actor replaced meanwhile
        for to, whom, msg in parcels:
            if self.seated.get(to) == whom:
                self.boxes[to].append((actor, msg))

    def take(self, seat: int, actor: int
             ) -> tuple[list[tuple[int, tuple[Any, ...]]], dict[int, int]]:
        """The mailbox of ``seat`` (emptied) if ``actor`` sits there, and who sits where."""
        if self.seated.get(seat) != actor:
            return [], dict(self.seated)
        box, self.boxes[seat] = self.boxes[seat], []
        return box, dict(self.seated)

    def since(self, version: int) -> tuple[list[tuple[Any, ...]], int]:
        """What was logged since ``version``, and the version now."""
        return self.log[version:], len(self.log)

    def done(self, serial: int) -> None:
        """The coordinator has task ``serial``'s result."""
        self.partials.pop(serial, None)
        self.finished.add(serial)

    def holding(self) -> list[int]:
        """The unfinished tasks that have sent batches."""
        return list(self.partials)

    def found(self, serials: list[int]) -> dict[int, Partial]:
        """What the tasks ``serials`` (whose actor was lost) found up to their last batch."""
        return {s: self.partials.pop(s) for s in serials if s in self.partials}


class FoundSoFar:
    """What a task has found, handed out in parts: each batch an actor sends carries what
    is new since its previous one (:class:`Partial`)."""

    def __init__(self) -> None:
        self.dpor: Any = None
        self.sent_findings: dict[tuple[str, str], Finding] = {}
        self.sent_final: set[Any] = set()
        self.sent_violations: set[tuple[str, str, str]] = set()
        self.sent_reports = 0

    def watch(self, dpor: Any) -> None:
        """The task's search (task_search.TaskDpor), whose findings go with the batches."""
        self.dpor = dpor
        self.sent_findings, self.sent_final, self.sent_violations = {}, set(), set()
        self.sent_reports = 0

    def partial(self) -> Partial:
        """What the task found since the previous call (goals, masked checks and fields
        read: so far)."""
        d = self.dpor
        if d is None:
            return Partial()
        r = d.r
        new = [f for k, f in r.findings.items() if self.sent_findings.get(k) is not f]
        self.sent_findings.update((f.key, f) for f in new)
        final = r.final_states - self.sent_final
        self.sent_final |= final
        violations = r.violations - self.sent_violations
        self.sent_violations |= violations
        reports = d.reports[self.sent_reports:]
        self.sent_reports = len(d.reports)
        return Partial(
            [Finding(f.kind, f.prop, f.message, f.schedule, details=dict(f.details))
             for f in new],
            set(final), set(violations), list(reports), set(r.goals), dict(r.masked_by),
            frozenset(d.observed))


class RayEndpoint(Endpoint):
    """An actor's side of the exchange: completed states go to the relay in batches,
    each with what the task found up to it (:class:`FoundSoFar`), and the other actors'
    states are merged as they come. Reading the relay never waits: a read is sent, and
    taken when it has come back."""

    #: search-loop iterations between two looks at the relay: each look is a Ray call the
    #: relay serves, and on a small cluster the relay's CPU is the actors' (measured:
    #: bench/ray_cluster.py, docs/performance.md)
    poll_every = RAY_POLL_EVERY

    def __init__(self, me: int, relay: Any, batch: int = BATCH) -> None:
        super().__init__(me, [], batch)
        self.relay = relay
        self.serial = 0
        self.version = 0
        self.reading: Any = None
        self.found = FoundSoFar()

    def watch(self, dpor: Any) -> None:
        """The task's search, whose findings go with the batches."""
        self.found.watch(dpor)

    def publish(self) -> None:
        """Send the completed states collected so far, with what the task found up to
        now, to the relay (without waiting)."""
        msg = self.encode()
        if msg is not None and self.relay is not None:
            self.relay.put.remote(self.serial, msg, self.found.partial())

    def drain(self) -> None:
        """Merge what the last read of the relay brought, and send the next read."""
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
                self.relay = self.reading = None  # coordinator starts the search again)
                return
            for _serial, msg in items:
                if msg[2] == self.me:  # its own: in its table already
                    continue
                search, visible, entries = self.decode(msg)
                if search == self.search:
                    self.merge(visible, entries)
        self.reading = self.relay.since.remote(self.version)
