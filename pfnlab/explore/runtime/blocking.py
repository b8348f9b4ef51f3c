"""A blocked thread and what wakes it (engine-internal): the fields its failed attempt read
(a wait) or the word of the lock it is about to take are *watched*, and a write to one of
them re-checks it (waits.wake)."""

from __future__ import annotations

from typing import Any

from pfnlab.explore.runtime.services import Runtime
from pfnlab.explore.runtime.threads import ThreadState


def block(ex: Runtime, t: ThreadState, reads: Any) -> None:
    """``t``'s attempt failed: it may not step until a write to ``reads`` wakes it."""
    t.blocked = True
    t.value = False
    unwatch(ex, t)
    watch(ex, t, reads)


def watch(ex: Runtime, t: ThreadState, reads: Any) -> None:
    """Writes to ``reads`` (object index, field) re-check ``t``'s pending attempt."""
    for key in reads:
        ex.watch.setdefault(key, set()).add(t.tid)
        t.watched.append(key)


def unwatch(ex: Runtime, t: ThreadState) -> None:
    """No write re-checks ``t`` any more."""
    for key in t.watched:
        ex.watch[key].discard(t.tid)
    t.watched.clear()
