"""The engine's view of one model thread (engine-internal)."""

from __future__ import annotations

import greenlet

from pfnlab.explore.fingerprint import digest
from pfnlab.explore.runtime.ops import Footprint, Op

#: the history key of a finished thread (a constant: its state is over)
DONE_KEY = digest(b"<finished thread>")


class ThreadState:
    """The engine's view of one model thread."""

    __slots__ = ("blocked", "depth", "glet", "key", "name", "op", "opstarts", "reads", "stale",
                 "tid", "value", "watched")

    def __init__(self, tid: int, name: str, glet: greenlet.greenlet) -> None:
        self.tid = tid
        self.name = name
        self.glet = glet
        self.op: Op | None = None      # None once finished
        self.key = digest(name.encode())  # history key (128-bit, see fingerprint.py)
        self.depth = 0                 # summarised calls in progress (threadstate.py)
        self.blocked = False           # failed an attempt; waits for a write to `reads`
        self.reads: Footprint = ()     # footprint of the pending lock/wait attempt
        self.value = False             # whether the pending lock/wait attempt would succeed
        self.watched: list[tuple[int, str]] = []  # fields whose writes re-check the attempt
        self.stale = False             # glet is ahead of the state (snapshot.py)
        #: where each of its operations started, to rebuild from the last (snapshot.py)
        self.opstarts: list[tuple[int, int, int, int, bool, int]] = []


