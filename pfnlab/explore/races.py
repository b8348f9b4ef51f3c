"""Happens-before data-race detection for plain fields (the KCSAN view of a model).

Accesses to :class:`~pfnlab.explore.Plain` fields are not scheduling points: they ride
along with the thread's current step. That is sound for programs without data races on
plain fields (every two conflicting plain accesses of different threads are ordered by
synchronisation), and this detector is what makes it safe to rely on: it computes the
happens-before order of each explored execution from synchronisation alone and reports
any two conflicting plain accesses it does not order as a ``data-race`` finding.

Happens-before here (vector clocks, as in FastTrack/DJIT+):

- program order within a thread (a thread's own clock entry grows after each release, so
  accesses after a release in the same step are not ordered by it);
- a lock release orders before the next acquire of that lock;
- a marked (``Field``) write or atomic read-modify-write *releases* the field, a marked read
  or a ``wait_until`` that reads it *acquires* it; a read-modify-write does both, so a
  chain of atomics forms a release sequence;
- freeing an object releases it, and counts as a plain write of each of its plain fields:
  a plain access that the free does not order (before or after) is a use after free in
  another interleaving, reported as such.

Ghost fields order nothing. A plain access's own clock is never used to order other
plain accesses, so a race is never hidden by another racy access.

Why one race found suffices (CHESS, Musuvathi and Qadeer 2007; the classic
data-race-free reduction): take the shortest fine-grained execution whose last access
races with an earlier one. Its prefix is race-free, so its plain accesses commute to the
scheduling points before them and an equivalent coarse execution exists, which the search
explores up to equivalence; the two racing accesses stay unordered by synchronisation in
every linearisation, so the detector sees them there. Hence: no race reported by an
exhaustive search means the program has none, and then the coarse search covers every
state a fine-grained search could observe at a scheduling point.
"""

from __future__ import annotations

Clock = list[int]
Key = tuple[int, str]  # (object index, field)


class Race:
    """Two conflicting plain accesses that no synchronisation orders."""

    __slots__ = ("earlier_kind", "earlier_step", "earlier_tid", "key", "kind")

    def __init__(self, key: Key, kind: str, earlier_tid: int, earlier_kind: str,
                 earlier_step: int) -> None:
        self.key = key
        self.kind = kind                  # "read" or "write": the access that found it
        self.earlier_tid = earlier_tid
        self.earlier_kind = earlier_kind
        self.earlier_step = earlier_step  # that thread's step count at the earlier access


class RaceDetector:
    """Vector clocks of one execution's threads and synchronisation variables."""

    def __init__(self, nthreads: int) -> None:
        self.n = nthreads
        self.clocks: list[Clock] = [[1 if i == t else 0 for i in range(nthreads)]
                                    for t in range(nthreads)]
        self.sync: dict[Key, Clock] = {}               # released clocks of locks/fields
        self.writes: dict[Key, tuple[int, int]] = {}   # plain: last write (tid, epoch)
        self.reads: dict[Key, dict[int, int]] = {}     # plain: reads since it (tid: epoch)

    def acquire(self, tid: int, key: Key) -> None:
        """``tid`` synchronises with the last release of ``key`` (lock acquire, marked read)."""
        rel = self.sync.get(key)
        if rel is not None:
            c = self.clocks[tid]
            for i, v in enumerate(rel):
                if v > c[i]:
                    c[i] = v

    def release(self, tid: int, key: Key, rmw: bool = False) -> None:
        """``tid`` releases ``key`` (unlock, marked write; an RMW also keeps earlier ones)."""
        c = self.clocks[tid]
        prev = self.sync.get(key)
        if rmw and prev is not None:
            self.sync[key] = [max(a, b) for a, b in zip(prev, c, strict=True)]
        else:
            self.sync[key] = list(c)
        c[tid] += 1

    def plain_read(self, tid: int, key: Key) -> Race | None:
        """A plain read by ``tid``: a race if the last write is not ordered before it."""
        c = self.clocks[tid]
        w = self.writes.get(key)
        if w is not None and w[0] != tid and w[1] > c[w[0]]:
            return Race(key, "read", w[0], "write", w[1])
        self.reads.setdefault(key, {})[tid] = c[tid]
        return None

    def summary(self) -> tuple[object, ...]:
        """What of this detector's state can still decide a future race, canonically.

        Part of the state fingerprint: two states with equal fields and threads but
        different happens-before histories can differ in their futures (a free that races
        in one is ordered in the other), so caching must not merge them. Raw epochs grow
        with every release and would split every state; what the future compares is, for
        each plain access not yet ordered before every thread, which threads and which
        synchronisation variables already carry it (a later access only compares against
        these; its own epoch is newer than every clock value recorded so far).
        """
        out: list[object] = []
        done: list[Key] = []
        for key, (u, e) in self.writes.items():
            entry = self._carried(u, e)
            if entry is not None:
                out.append((key, "w", u, *entry))
            else:
                done.append(key)
        for key in done:  # ordered before every thread for good: it can race no more
            del self.writes[key]
        for key, readers in self.reads.items():
            for u, e in list(readers.items()):
                entry = self._carried(u, e)
                if entry is not None:
                    out.append((key, "r", u, *entry))
                else:
                    del readers[u]
        out.sort()
        return tuple(out)

    def _carried(self, u: int, e: int) -> tuple[tuple[int, ...], tuple[Key, ...]] | None:
        threads = tuple(t for t in range(self.n) if t != u and self.clocks[t][u] >= e)
        if len(threads) == self.n - 1:
            return None  # ordered before every thread: it can race no more
        syncs = tuple(sorted(k for k, c in self.sync.items() if c[u] >= e))
        return threads, syncs

    def free(self, tid: int, keys: list[Key]) -> Race | None:
        """``tid`` frees an object whose plain fields are ``keys``: a write of each of them
        (an unordered earlier access is a use after free in another interleaving)."""
        for key in keys:
            race = self.plain_write(tid, key)
            if race is not None:
                return race
        return None

    def plain_write(self, tid: int, key: Key) -> Race | None:
        """A plain write by ``tid``: a race if an earlier access is not ordered before it."""
        c = self.clocks[tid]
        w = self.writes.get(key)
        if w is not None and w[0] != tid and w[1] > c[w[0]]:
            return Race(key, "write", w[0], "write", w[1])
        for u, e in self.reads.get(key, {}).items():
            if u != tid and e > c[u]:
                return Race(key, "write", u, "read", e)
        self.writes[key] = (tid, c[tid])
        self.reads.pop(key, None)
        return None
