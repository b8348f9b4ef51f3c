"""Python's garbage collector while a search runs.

A search allocates millions of objects that live until it ends (visited states, their
summaries and sleep sets, checkpoints, memoised steps). With the default thresholds
(700, 10, 10) the collector traverses that growing heap again and again: at 3 vCPUs x 3
pages, 13 full collections took 5 s of an 80 s search, and the young collections' cache
misses cost more than their own time (the same search took 59 s with the thresholds
below; see README, Limits). Objects are still freed by reference counting the moment
they die; only reference cycles wait longer for the collector, whose young generation
still runs every :data:`THRESHOLDS` ``[0]`` allocations.

Nothing a search decides depends on when the collector runs (identities the engine keys
on are of objects it keeps alive: exchange.intern), so this changes time and memory only.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: allocations between young collections; young collections per middle one; middle ones
#: per full one (Python also waits until a quarter of the old objects are new)
THRESHOLDS = (100_000, 20, 100)


@contextmanager
def searching() -> Iterator[None]:
    """Collect with :data:`THRESHOLDS` in this block (forked workers inherit them); the
    thresholds before are restored after it."""
    old = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)
