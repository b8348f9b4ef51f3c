"""The states a search has visited (TLC's ``FPSet``): what state caching asks and what it
keeps, behind one interface, so that where the table lives (one process, every worker's own
copy, a table partitioned among workers) is no concern of the search.

An :class:`Entry` is one visited state: the sleep set of its first exploration (a later visit
is pruned only with a sleep set that contains it) and, once its subtree was explored in
full, the *summary* of the events below it, which a pruned visit races against
(docs/reductions.md section 2). While its subtree is being explored the summary is None:
the state is on the stack, and a visit then (a retry loop back to it) is never pruned.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

#: a summary: (thread, object, field, is_write) of every event below a state
Summary = frozenset[tuple[int, int, str, bool]]

#: an entry as workers send it: (fingerprint, initial sleep set, summary)
Shipped = tuple[int, frozenset[int], frozenset[Any]]

_INTERNED: dict[frozenset[Any], frozenset[Any]] = {}


def intern(s: frozenset[Any]) -> frozenset[Any]:
    """One object per distinct set, for every search of this process: the sets workers
    send (pickling sends each once; parallel/exchange.py codes them by identity)."""
    return _INTERNED.setdefault(s, s)


@dataclass
class Entry:
    """One visited state (module docstring)."""

    init_sleep: frozenset[int]
    summary: Summary | None = None


class VisitedTable:
    """A table of visited states, by 128-bit fingerprint, in this process."""

    __slots__ = ("_entries", "_summaries")

    def __init__(self) -> None:
        self._entries: dict[int, Entry] = {}
        #: one object per distinct summary (states far outnumber summaries: memory)
        self._summaries: dict[Summary, Summary] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[int]:
        return iter(self._entries)

    def lookup(self, fp: int) -> Entry | None:
        """The entry of state ``fp``, if it was visited."""
        return self._entries.get(fp)

    def visit(self, fp: int, init_sleep: frozenset[int]) -> bool:
        """State ``fp`` is explored (again) with ``init_sleep`` asleep; True if it is new. A
        state explored twice covers what either exploration covers: its initial sleep set
        becomes the intersection."""
        e = self._entries.get(fp)
        if e is None:
            self._entries[fp] = Entry(init_sleep)
            return True
        e.init_sleep = e.init_sleep & init_sleep
        return False

    def complete(self, fp: int, summary: Summary) -> None:
        """The subtree below state ``fp`` was explored in full, with events ``summary``
        (united with an earlier exploration's)."""
        e = self._entries[fp]
        if e.summary is not None:
            summary = e.summary | summary
        e.summary = self._summaries.setdefault(summary, summary)

    def merge(self, entries: Iterable[Shipped]) -> None:
        """Add the completed states another worker sends (their sleep sets intersected and
        summaries united with this table's, as :meth:`visit` and :meth:`complete` do)."""
        table = self._entries
        for fp, sleep, summary in entries:
            e = table.get(fp)
            if e is None:
                table[fp] = Entry(intern(sleep), intern(summary))
            else:
                e.init_sleep = intern(e.init_sleep & sleep)
                e.summary = intern(summary if e.summary is None else e.summary | summary)

    def shipped(self, fps: Iterable[int]) -> list[Shipped]:
        """The entries of the completed states among ``fps``, as workers send them."""
        out = []
        for fp in fps:
            e = self._entries.get(fp)
            if e is not None and e.summary is not None:
                out.append((fp, intern(e.init_sleep), intern(e.summary)))
        return out
