"""A table of visited states partitioned among the workers (TLC's ``DistributedFPSet``,
Stern and Dill's parallel Murphi): each fingerprint is *owned* by one worker.

With :class:`~.exchange.Exchange` every worker receives every completed entry, so each
holds the whole table: memory times the number of workers. Here a worker sends the entries
it completes to their owners only, and keeps its own (the states it explored, which prune
its own revisits as in the sequential search) and those it owns. So a worker holds about
``2 x total / N`` entries where it held ``total``.

Another worker's states it learns by asking. A state the search reaches for the first time
in this worker, and does not own, is queried from its owner, in batches; the owner answers
at once if the state is completed there, and otherwise remembers the question and forwards
the entry when one arrives (the completing worker sends it to the owner). The asker does
not wait: it explores the state meanwhile, and when the answer comes while the state is
still on its stack, with a sleep set contained in the node's, the node is cut
(``task_search.TaskDpor._cut``: the cache hit the sequential search would have had). A
state whose answer comes after the worker finished it was explored twice, which costs time,
never soundness. Why pruning and cutting with an entry that arrives at any moment keeps
the search exhaustive: docs/reductions.md section 12.
"""

from __future__ import annotations

import queue
from typing import Any

from pfnlab.explore.search.parallel.exchange import Endpoint, code
from pfnlab.explore.search.visited import Shipped, VisitedTable, intern

#: fingerprints a worker collects for one owner before it asks
QUERY_BATCH = 64
#: looks at the inbox between two sendings of the questions collected (a full batch goes at
#: once): fewer, larger messages; an answer a little later costs little (a cut comes
#: early in a large subtree, and a small one is done before any answer could come)
ASK_EVERY = 4


def owner_of(fp: int, workers: int) -> int:
    """The worker that owns state ``fp`` (fingerprints are uniform 128-bit hashes: their
    high half, modulo the workers)."""
    return (fp >> 64) % workers


class PartitionedEndpoint(Endpoint):
    """A worker's side of a partitioned table (module docstring): the same coding of sets
    as :class:`~.exchange.Endpoint`, but per receiver, since each message goes to one."""

    def __init__(self, me: int, inboxes: list[Any]) -> None:
        super().__init__(me, inboxes)
        n = len(inboxes)
        self.n = n
        #: per receiver: the numbers of the sets and elements sent to it
        self.codes_to: list[dict[int, int]] = [{} for _ in range(n)]
        self.atoms_to: list[dict[Any, int]] = [{} for _ in range(n)]
        #: per owner: fingerprints to ask it about
        self.asking: list[list[int]] = [[] for _ in range(n)]
        #: (visible, fingerprint) -> the workers that asked about an owned state not
        #: completed yet
        self.interest: dict[tuple[Any, int], set[int]] = {}
        self.asked = 0
        self.answered = 0
        self.looks = 0

    def begin(self, search: str, caches: dict[Any, VisitedTable], visible: Any) -> None:
        """A task starts: another search's questions are of no use any more."""
        if search != self.search:
            self.interest.clear()
            self.asking = [[] for _ in range(self.n)]
        super().begin(search, caches, visible)

    def visited_new(self, fp: int) -> None:
        """The search reached state ``fp`` for the first time here: ask its owner."""
        w = owner_of(fp, self.n)
        if w != self.me:
            batch = self.asking[w]
            batch.append(fp)
            if len(batch) >= QUERY_BATCH:
                self._ask(w)

    def counters(self) -> dict[str, int]:
        """As Endpoint's, and the states asked about and answered (here, for others)."""
        return {**super().counters(), "asked": self.asked, "answered": self.answered}

    def _ask(self, w: int) -> None:
        fps, self.asking[w] = self.asking[w], []
        if fps:
            self.inboxes[w].put(("q", self.search, self.visible, self.me, fps))
            self.asked += len(fps)

    def arrivals(self) -> list[tuple[int, frozenset[int]]]:
        """Every ``ASK_EVERY`` looks, ask what is waiting to be asked; then as
        :meth:`Endpoint.arrivals`."""
        self.looks += 1
        if self.looks % ASK_EVERY == 0:
            self.ask_now()
        return super().arrivals()

    def ask_now(self) -> None:
        """Send every owner the questions collected for it."""
        for w in range(self.n):
            self._ask(w)

    def publish(self) -> None:
        """Send each completed state to its owner (and, for one owned here, to whoever
        asked about it)."""
        if not self.out:
            return
        entries = self.table.shipped(self.out)
        self.out = []
        by_worker: dict[int, list[Shipped]] = {}
        for e in entries:
            w = owner_of(e[0], self.n)
            if w != self.me:
                by_worker.setdefault(w, []).append(e)
            else:
                for asker in self.interest.pop((self.visible, e[0]), ()):
                    by_worker.setdefault(asker, []).append(e)
        for w, batch in by_worker.items():
            self._send(w, self.visible, batch)

    def _send(self, w: int, visible: Any, entries: list[Shipped]) -> None:
        """Send ``entries`` to worker ``w``, sets by number (see Endpoint.encode)."""
        new_atoms, new_sets, coded = code(entries, self.codes_to[w], self.atoms_to[w])
        self.inboxes[w].put(("e", self.search, visible, self.me, new_atoms, new_sets, coded))
        self.sent += len(coded)

    def drain(self) -> None:
        """Merge the entries that have arrived (forwarding those asked about), and answer
        the questions."""
        for msg in self.messages():
            if msg[0] == "q":
                self._answer(*msg[1:])
            else:
                self._merge(msg[1:])

    def _answer(self, search: str, visible: Any, sender: int, fps: list[int]) -> None:
        if search != self.search:
            return
        table = self.caches.get(visible)
        found: list[Shipped] = []
        for fp in fps:
            e = table.lookup(fp) if table is not None else None
            if e is not None and e.summary is not None:
                found.append((fp, intern(e.init_sleep), intern(e.summary)))
            else:
                self.interest.setdefault((visible, fp), set()).add(sender)
        if found:
            self._send(sender, visible, found)
            self.answered += len(found)

    def _merge(self, msg: tuple[Any, ...]) -> None:
        search, visible, entries = self.decode(msg)
        if search != self.search:
            return
        sender = msg[2]
        self.merge(visible, entries)
        forward: dict[int, list[Shipped]] = {}
        for e in entries:
            for asker in self.interest.pop((visible, e[0]), ()):
                if asker != sender:
                    forward.setdefault(asker, []).append(e)
        for w, batch in forward.items():
            self._send(w, visible, batch)


class ListQueue:
    """An inbox of simulated workers in one process (the calls of a multiprocessing queue
    that an endpoint makes)."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def put(self, msg: Any) -> None:
        """Deliver ``msg``."""
        self.items.append(msg)

    def get_nowait(self) -> Any:
        """The oldest message; queue.Empty if none."""
        if not self.items:
            raise queue.Empty
        return self.items.pop(0)


class SimulatedEndpoint(PartitionedEndpoint):
    """A partitioned endpoint of one of several workers simulated in one process
    (``workers.InProcess(partitioned=True)``): the others answer questions and forward
    entries only when they run, so at each look for arrivals, now and then (drawn from
    ``rng``), every other worker takes in its inbox as if it ran concurrently."""

    poll_every = 1

    def __init__(self, me: int, inboxes: list[Any], peers: list[SimulatedEndpoint],
                 rng: Any) -> None:
        super().__init__(me, inboxes)
        self.peers = peers
        self.rng = rng

    def arrivals(self) -> list[tuple[int, frozenset[int]]]:
        """As a real worker's, with the others running now and then in between."""
        self.ask_now()
        if self.rng.random() < 0.5:
            for peer in self.peers:
                if peer is not self:
                    peer.drain()
        return super().arrivals()
