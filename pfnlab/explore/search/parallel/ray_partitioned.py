"""A table of visited states partitioned among Ray actors: partitioned.py's protocol
(each fingerprint owned by one seat; completed entries sent to their owner, questions
asked in batches, answers and forwards) with the relay's mailboxes as the transport.

Every message an actor sends goes through the relay in one call together with what its
task has found so far (ray_exchange.Partial), as the whole-table exchange sends its
batches: whatever another actor learns from this one, even an answer about a state it
owns and completed itself, reaches the relay no earlier than what the exploration of
that state found. So the argument for a lost actor stays the one of ray_actors.py: its
unfinished tasks run again carrying what their lost runs found (docs/reductions.md
section 12). What a lost actor owned is lost with it: states its successor is asked
about are not known and get explored again (a cache: more work, never less coverage).

Per-receiver coding of sets (partitioned.py) needs each receiver to read a sender's
messages in order and to know what the sender sent before: the relay keeps messages in
order per mailbox and drops those to and from a replaced actor; an actor that sees a
seat taken by a new actor codes for it afresh and forgets what the old one sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pfnlab.explore.search.parallel.exchange import BATCH
from pfnlab.explore.search.parallel.partitioned import PartitionedEndpoint
from pfnlab.explore.search.parallel.ray_exchange import RAY_POLL_EVERY, FoundSoFar


class _Outbox:
    """The inbox of seat ``seat`` as a sender sees it: messages wait in the sender's
    parcels until it posts them to the relay (:meth:`RayPartitionedEndpoint.post`)."""

    def __init__(self, ep: RayPartitionedEndpoint, seat: int) -> None:
        self.ep = ep
        self.seat = seat

    def put(self, msg: tuple[Any, ...]) -> None:
        """Queue ``msg`` for the actor in the seat (as last seen)."""
        self.ep.parcels.append((self.seat, self.ep.seated.get(self.seat, -1), msg))


class RayPartitionedEndpoint(PartitionedEndpoint):
    """Actor ``actor``'s side of a partitioned table, in ``seat`` of those ``seated``
    (seat -> actor, as the coordinator seated them: module docstring). Reading the
    relay never waits: a read is sent, and taken when it has come back."""

    poll_every = RAY_POLL_EVERY  #: (as RayEndpoint's: each look is a call the relay serves)

    def __init__(self, seat: int, seated: dict[int, int], actor: int, relay: Any,
                 batch: int = BATCH) -> None:
        self.parcels: list[tuple[int, int, tuple[Any, ...]]] = []
        #: seat -> the actor in it, as last heard from the relay
        self.seated = dict(seated)
        seats = len(seated)
        super().__init__(seat, [_Outbox(self, w) for w in range(seats)])
        self.batch = batch
        self.actor = actor
        self.relay = relay
        self.serial = 0
        self.reading: Any = None
        self.found = FoundSoFar()
        #: per seat: the actor whose messages this one decodes
        self.heard: dict[int, int] = {}

    def watch(self, dpor: Any) -> None:
        """The task's search, whose findings go with every post."""
        self.found.watch(dpor)

    def publish(self) -> None:
        """Send each completed state to its owner (partitioned.py), now."""
        super().publish()
        self.post()

    def ask_now(self) -> None:
        """Send every owner its questions, now."""
        super().ask_now()
        self.post()

    def drain(self) -> None:
        """Take in what has come (answering and forwarding), and send the replies."""
        super().drain()
        self.post()

    def post(self) -> None:
        """The messages queued so far, with what the task found up to now, to the relay
        in one call (without waiting)."""
        parcels, self.parcels = self.parcels, []
        if parcels and self.relay is not None:
            self.relay.post.remote(self.serial, self.me, self.actor, parcels,
                                   self.found.partial())

    def messages(self) -> Iterator[tuple[Any, ...]]:
        """What the last read of the relay brought, in order (a read is then sent again)."""
        import ray

        if self.relay is None:
            return
        if self.reading is not None:
            ready, _ = ray.wait([self.reading], timeout=0)
            if not ready:
                return
            try:
                items, seated = ray.get(self.reading)
            except ray.exceptions.RayError:  # the relay is gone: no more exchange (the
                self.relay = self.reading = None  # coordinator starts the search again)
                return
            self._seated(seated)
            self.reading = self.relay.take.remote(self.me, self.actor)
            for sender, msg in items:
                seat = msg[3]
                if self.heard.get(seat) != sender:  # a new actor in that seat
                    self.heard[seat] = sender
                    self.decoded.pop(seat, None)
                    self.atoms_of.pop(seat, None)
                yield msg
            return
        self.reading = self.relay.take.remote(self.me, self.actor)

    def _seated(self, seated: dict[int, int]) -> None:
        """Who sits where now: a seat with a new actor gets its sets coded afresh."""
        for seat, actor in seated.items():
            if self.seated.get(seat) != actor:
                self.seated[seat] = actor
                self.codes_to[seat] = {}
                self.atoms_to[seat] = {}
