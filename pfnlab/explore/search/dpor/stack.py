"""The stack of a DPOR search: its events and nodes, and what a race adds to a node.

Source-DPOR runs by re-execution: the stack holds one :class:`Node` per state of the
current execution, and each step between two of them is an :class:`Event` with a vector
clock. A node keeps its backtrack set (the source set being built), its sleep set and the
reversal sequences to follow after a thread (``hints``); a race adds to them
(:func:`apply_race`), a conservative one adds every enabled thread (:func:`expand_fully`).

Invariants of the stack, written next to the data (search.py):
- ``len(events) == len(stack) - 1`` between iterations: ``events[i]`` leads from
  ``stack[i]`` to ``stack[i + 1]``;
- ``obj_events[o]`` lists, in increasing order, the indices of events touching object ``o``;
- a node's ``sleep`` maps the threads whose next step is covered elsewhere to that step's
  footprint (as executed when it was explored); explored threads join it when their subtree
  is done. A sleeping thread's next step cannot change without a dependent step, which wakes
  it, so the recorded footprint stays exact.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore.runtime import Execution, Footprint
from pfnlab.explore.runtime.snapshot import Checkpoint


class Event:
    __slots__ = ("acq", "clock", "fp", "seq", "tid")

    def __init__(self, tid: int, fp: Footprint, seq: int, clock: tuple[int, ...]) -> None:
        self.tid = tid
        self.fp = fp
        self.seq = seq        # 1-based position of this event among its thread's events
        self.clock = clock    # clock[t] = how many of thread t's events happen before (incl.)
        self.acq = -1         # the lock the step began by taking (Execution.acquiring), or -1


class Node:
    __slots__ = (
        "backtrack",
        "cp",
        "cp_ex",
        "cur",
        "enabled",
        "fingerprint",
        "full",
        "hints",
        "init_sleep",
        "sleep",
        "summary",
        "tclock",
        "wut",
    )

    def __init__(
        self,
        enabled: list[int],
        sleep: dict[int, Footprint],
        tclock: tuple[tuple[int, ...], ...],
        fingerprint: int | None,
    ) -> None:
        self.enabled = enabled
        self.sleep = sleep
        self.init_sleep = frozenset(sleep)   # threads asleep on arrival
        self.backtrack: set[int] = set()
        for t in enabled:
            if t not in sleep:
                self.backtrack.add(t)
                break
        self.tclock = tclock
        self.fingerprint = fingerprint
        self.cur = -1
        self.full = False
        # thread -> reversal sequences to follow after it (see _race)
        self.hints: dict[int, set[tuple[int, ...]]] = {}
        self.summary: set[tuple[int, int, str, bool]] = set()
        self.cp: Checkpoint | None = None     # the state, to restore (snapshot.py)
        self.cp_ex: Execution | None = None   # the execution the checkpoint belongs to
        self.wut: Any = None                  # the wakeup tree (optimal.py only)



def apply_race(node: Node, initials: list[int], v: list[int]) -> None:
    """Add to ``node``'s backtrack set (and hints) for a race whose reversal is ``v`` (the
    threads of notdep(e).e', in order) with these ``initials``.

    Any initial of ``v`` is one the reversal can start with; one that is not enabled at the
    node (a thread waiting for a lock that a step of ``v`` releases) cannot, so an enabled
    initial is taken in its place; with none, every enabled thread (the conservative rule
    for disabled steps)."""
    head = next((t for t in initials if t in node.backtrack), -1)
    if head < 0:
        last = v[-1]
        head = last if last in initials else (initials[0] if initials else -1)
        if head not in node.enabled:
            head = next((t for t in initials if t in node.enabled), -1)
        if head in node.enabled:
            node.backtrack.add(head)
        else:
            node.backtrack.update(node.enabled)
            return
    # Remember the rest of the reversal, to follow it after ``head`` (as wakeup trees
    # do). Source-DPOR alone relies on rediscovering the race in the new execution; that
    # failed when a blocked waiter's pending step showed less than the step it took when
    # the wait passed, which now ends its step there (docs/reductions.md section 2). The
    # hints stay as a strengthening; a cache hit cannot pass them on, and does not need to.
    rest: list[int] = []
    skipped = False
    for tid in v:
        if not skipped and tid == head:
            skipped = True
            continue
        rest.append(tid)
    if rest:
        node.hints.setdefault(head, set()).add(tuple(rest))



def expand_fully(node: Node) -> None:
    """Every enabled thread of ``node`` joins its backtrack set (a conservative race)."""
    node.backtrack.update(node.enabled)
    node.full = True
