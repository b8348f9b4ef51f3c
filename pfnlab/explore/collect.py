"""Side records a search keeps besides its result, across the workers of a parallel search.

A layer above the engine may record something while the model runs (which kernel
functions ran, from which lines: pfnlab/model/reach.py). In one process it records into
one object; a parallel search runs most of the model in worker processes (or on Ray),
whose records would be lost. So such an object is a :class:`Collector`, made active with
:func:`collecting`: the coordinator hands every task a ``fresh()`` one of each active
collector, the worker makes those active while the task runs (they take over from any it
inherited), sends them back with its result, and the coordinator ``merge``-s them into its
own. The engine only carries them: what they record is the layer's business.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol


class Collector(Protocol):
    """What a side record provides (a picklable object: it travels to workers and back)."""

    def fresh(self) -> Collector:
        """An empty record of the same kind, for one task."""

    def merge(self, other: Any) -> None:
        """Add what ``other`` (a task's record, sent back) recorded."""

    def activate(self) -> Any:
        """A context manager that makes this record the one the model records into."""


_ACTIVE: list[Collector] = []


@contextmanager
def collecting(*records: Collector) -> Iterator[None]:
    """Make ``records`` active in this block: the model records into them, and a parallel
    search run here gathers its tasks' records into them."""
    with ExitStack() as stack:
        for r in records:
            stack.enter_context(r.activate())
            _ACTIVE.append(r)
        try:
            yield
        finally:
            for r in records:
                _ACTIVE.remove(r)


def active() -> tuple[Collector, ...]:
    """The records active in this process, oldest first."""
    return tuple(_ACTIVE)


def fresh_records() -> tuple[Collector, ...]:
    """An empty record for each active one: what a task carries to its worker."""
    return tuple(r.fresh() for r in _ACTIVE)


def merge_records(records: tuple[Any, ...], into: tuple[Collector, ...]) -> None:
    """Merge a task's ``records`` (sent back) into the coordinator's ``into``."""
    for mine, theirs in zip(into, records, strict=True):
        mine.merge(theirs)
