"""Visited states shared between the workers of one parallel search.

A worker's table of visited states (visited.py: per state, the sleep set it was first
explored with and the summary of its subtree) prunes every later visit of a completed
state. Workers share the entries they complete, two ways:

- :class:`SharedTable`: the coordinator merges the entries a task sends back and attaches
  to each new task what its worker has not seen yet (Ray, and the in-process backend the
  tests use). A worker learns of another's states only when a task ends.
- :class:`Exchange`: local worker processes publish the entries they complete *while* a
  task runs, in batches, straight to the other workers' inboxes, and merge what they
  receive as they go (``Endpoint``). Two workers exploring subtrees that converge on the
  same states then explore each state once far more often, and nothing goes through the
  coordinator.

Why a state merged in at any moment keeps the search exhaustive (docs/reductions.md,
section 12): an entry is published only when its subtree was explored in full, in this
round of this search, with the same visible fields, so pruning a visit with it is the
sequential search's cache hit (same condition, same summary races). A state that is on the
receiving worker's own stack when the entry arrives (being explored there too) gets the
other worker's summary: a later visit below it is pruned with a summary that covers a whole
exploration, and its own summary is the union when it completes.
"""

from __future__ import annotations

import queue
from collections.abc import Iterable, Iterator
from typing import Any

from pfnlab.explore.search.visited import Shipped, VisitedTable, intern

#: an entry as workers send it: (fingerprint, initial sleep set, summary)
Shared = Shipped


class SharedTable:
    """The coordinator's log of completed visited states, merged, for the workers: a
    backend attaches to each task what its worker has not seen yet (``since``)."""

    def __init__(self) -> None:
        self.table: dict[int, tuple[frozenset[int], frozenset[Any]]] = {}
        self.log: list[Shared] = []
        self.sets: dict[frozenset[Any], frozenset[Any]] = {}  # one object per distinct set

    def add(self, entries: Iterable[Shared]) -> None:
        """Merge a task's completed entries."""
        sets = self.sets
        for fp, sleep, summary in entries:
            old = self.table.get(fp)
            if old is not None:
                sleep, summary = old[0] & sleep, old[1] | summary
                if (sleep, summary) == old:
                    continue
            sleep, summary = sets.setdefault(sleep, sleep), sets.setdefault(summary, summary)
            self.table[fp] = (sleep, summary)
            self.log.append((fp, sleep, summary))

    def since(self, version: int) -> tuple[tuple[Shared, ...], int]:
        """The entries logged since ``version``, and the version now."""
        return tuple(self.log[version:]), len(self.log)


#: how many completed states a worker collects before it publishes them
BATCH = 256


class Exchange:
    """One inbox per local worker process (made before the workers fork; each worker
    gets its index with :meth:`attach`). ``endpoint``: the class of the workers' side,
    :class:`Endpoint` (every worker gets every entry) or partitioned.py's."""

    def __init__(self, workers: int, ctx: Any, endpoint: type[Endpoint] | None = None) -> None:
        self.inboxes = [ctx.Queue() for _ in range(workers)]
        self.endpoint = endpoint or Endpoint

    def attach(self, me: int) -> None:
        """In worker ``me``: its :class:`Endpoint` becomes this process's."""
        for q in self.inboxes:
            # a worker killed at the end of a search must not wait for its feeder thread
            q.cancel_join_thread()
        _ENDPOINT[:] = [self.endpoint(me, self.inboxes)]

    def close(self) -> None:
        """The search is over (its workers are gone): release the inboxes."""
        for q in self.inboxes:
            q.cancel_join_thread()
            q.close()


class Endpoint:
    """A worker's side of the exchange. :meth:`begin` with the task's search and tables;
    the search calls :meth:`completed` for every state it completes; :meth:`end` publishes
    the rest when the task is over."""

    #: the task's result need not carry its entries: the other workers have them
    publishes = True
    #: search-loop iterations between two looks at :meth:`arrivals`
    poll_every = 32

    def __init__(self, me: int, inboxes: list[Any], batch: int = BATCH) -> None:
        self.me = me
        self.inboxes = inboxes
        #: completed states collected before they are published
        self.batch = batch
        self.search = ""
        self.caches: dict[Any, VisitedTable] = {}
        self.visible: Any = None
        self.table = VisitedTable()
        self.out: list[int] = []
        self.sent = 0
        self.received = 0
        #: the numbers of the sets this worker has sent (by object: sets are interned)
        self.codes: dict[int, int] = {}
        #: the numbers of the set elements this worker has sent
        self.atoms: dict[Any, int] = {}
        #: the sets and elements other workers have sent, by sender and number
        self.decoded: dict[int, dict[int, frozenset[Any]]] = {}
        self.atoms_of: dict[int, dict[int, Any]] = {}
        #: (fingerprint, initial sleep set) of the entries for the running task's table
        #: merged since :meth:`arrivals` last took them
        self.arrived: list[tuple[int, frozenset[int]]] = []

    def begin(self, search: str, caches: dict[Any, VisitedTable], visible: Any) -> None:
        """A task of ``search`` starts, with the worker's tables ``caches`` (by visible
        fields) and the task's ``visible``: merge what has arrived."""
        self.search, self.caches, self.visible = search, caches, visible
        self.table = caches.setdefault(visible, VisitedTable())
        self.out = []
        self.drain()
        self.arrived = []  # (merged before the task's search started: its lookups see them)

    def arrivals(self) -> list[tuple[int, frozenset[int]]]:
        """Take in what has arrived; the (fingerprint, initial sleep set) of every entry
        merged into the running task's table since the last call (the search cuts a node
        of its stack at such a state: task_search.TaskDpor._cut)."""
        self.drain()
        out, self.arrived = self.arrived, []
        return out

    def visited_new(self, fp: int) -> None:
        """The search explores state ``fp`` for the first time here (every worker has every
        completed entry: nothing to ask)."""

    def counters(self) -> dict[str, int]:
        """What this worker exchanged so far: entries sent and received; and the entries
        its tables hold now."""
        return {"sent": self.sent, "received": self.received,
                "held": sum(len(t) for t in self.caches.values())}

    def completed(self, fp: int) -> None:
        """The search completed state ``fp``: publish in batches, and take in what the
        others published."""
        self.out.append(fp)
        if len(self.out) >= self.batch:
            self.publish()
            self.drain()

    def end(self) -> None:
        """The task is over: publish what is left."""
        self.publish()

    def publish(self) -> None:
        """Send the completed states collected so far to every other worker."""
        msg = self.encode()
        if msg is None:
            return
        for i, q in enumerate(self.inboxes):
            if i != self.me:
                q.put(msg)

    def encode(self) -> tuple[Any, ...] | None:
        """The completed states collected so far as a message (None: nothing to send).
        Sets go by number: each distinct set (a summary, a sleep set) is sent once, as the
        numbers of its elements (each distinct element also sent once), and then only its
        number; unpickling a summary's tuples was most of the cost of the exchange. A
        receiver decodes a sender's messages in the order they were sent."""
        if not self.out:
            return None
        entries = self.table.shipped(self.out)
        self.out = []
        if not entries:
            return None
        new_atoms, new_sets, coded = code(entries, self.codes, self.atoms)
        self.sent += len(entries)
        return (self.search, self.visible, self.me, new_atoms, new_sets, coded)

    def decode(self, msg: tuple[Any, ...]) -> tuple[str, Any, list[Shared]]:
        """Another worker's message: its search, visible fields and entries."""
        search, visible, sender, new_atoms, new_sets, coded = msg
        atoms = self.atoms_of.setdefault(sender, {})
        atoms.update(new_atoms)
        sets = self.decoded.setdefault(sender, {})
        for c, elems in new_sets:
            sets[c] = intern(frozenset([atoms[k] for k in elems]))
        # a sender's messages arrive in order, each decoded above: its numbers are known
        return search, visible, [(fp, sets[a], sets[b]) for fp, a, b in coded]

    def merge(self, visible: Any, entries: list[Shared]) -> None:
        """Take ``entries`` (explored with ``visible``) into the worker's tables (those of
        the running task's table are :meth:`arrivals`)."""
        self.caches.setdefault(visible, VisitedTable()).merge(entries)
        self.received += len(entries)
        if visible == self.visible:
            self.arrived += [(fp, sleep) for fp, sleep, _s in entries]

    def messages(self) -> Iterator[tuple[Any, ...]]:
        """The messages in this worker's inbox, oldest first, until it is empty."""
        inbox = self.inboxes[self.me]
        while True:
            try:
                yield inbox.get_nowait()
            except (queue.Empty, OSError, EOFError):
                return

    def drain(self) -> None:
        """Merge every message that has arrived (another search's are dropped)."""
        for msg in self.messages():
            search, visible, entries = self.decode(msg)
            if search == self.search:
                self.merge(visible, entries)


def code(entries: list[Shared], codes: dict[int, int], atoms: dict[Any, int]
         ) -> tuple[list[tuple[int, Any]], list[tuple[int, tuple[int, ...]]],
                    list[tuple[int, int, int]]]:
    """``entries`` coded for a receiver that knows the sets numbered in ``codes`` (by the
    set's identity: sets are interned) and the elements numbered in ``atoms`` (both grow):
    the new elements, the new sets (as element numbers), and each entry as (fingerprint,
    sleep set's number, summary's number)."""
    new_atoms: list[tuple[int, Any]] = []
    new_sets: list[tuple[int, tuple[int, ...]]] = []
    coded = []
    for fp, sleep, summary in entries:
        pair = []
        for x in (sleep, summary):
            c = codes.get(id(x))
            if c is None:
                c = codes[id(x)] = len(codes)
                elems = []
                for a in x:
                    k = atoms.get(a)
                    if k is None:
                        k = atoms[a] = len(atoms)
                        new_atoms.append((k, a))
                    elems.append(k)
                new_sets.append((c, tuple(elems)))
            pair.append(c)
        coded.append((fp, pair[0], pair[1]))
    return new_atoms, new_sets, coded


_ENDPOINT: list[Endpoint] = []


def current_endpoint() -> Endpoint | None:
    """This worker process's endpoint (None outside local worker processes)."""
    return _ENDPOINT[-1] if _ENDPOINT else None
