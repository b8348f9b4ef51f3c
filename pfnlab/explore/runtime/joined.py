"""Stable reads joined to their thread's step, and the promotions a write makes (stable.py).

A read of a stable field that the reading thread has pinned is not a step: it joins the
thread's current step (or initial run), and a record ``(object index, field) -> threads``
says so until the thread's next step. A write of that field by another thread while the
record stands shows the read was not a left mover: the field is promoted (its reads become
steps) and the search starts again (docs/reductions.md section 10). The records are part of
the state (``_joined_key``).
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore.findings import (
    EXCEPTION,
)
from pfnlab.explore.fingerprint import digest
from pfnlab.explore.knowledge import promoted_key, written_key
from pfnlab.explore.runtime.ops import (
    PEEK,
    Footprint,
)
from pfnlab.explore.runtime.running import Running
from pfnlab.explore.shared import ALL_FIELDS, HOOKS, Shared
from pfnlab.explore.stable import Stable, stable_fields


class JoinedReads(Running):
    """Joined-read records and the promotions they cause."""

    def _pinned(self, obj: Shared, s: Stable[Any], who: str,
                reads: set[tuple[int, str]] | None = None) -> tuple[bool, set[tuple[int, str]]]:
        """Whether thread ``who`` holds a pin on ``obj`` now (``s.pinned``), and what the
        predicate read (no steps)."""
        if reads is None:
            reads = set()
        if s.pinned is None:  # __ro_after_init
            return True, reads
        prev_mode, prev_peek = self.mode, self.peek
        self.mode, self.peek = PEEK, reads
        prev = HOOKS.current  # (a write's check runs on the scheduler's side)
        HOOKS.current = self
        try:
            ok = bool(s.pinned(obj, who))
        finally:
            self.mode, self.peek = prev_mode, prev_peek
            HOOKS.current = prev
        return ok, reads

    def _join_record(self, tid: int, idx: int, field: str) -> None:
        """Thread ``tid`` read stable ``field`` of object ``idx`` joined to its current step
        (or initial run): recorded until its next step (stable.py)."""
        key = (idx, field)
        tids = self.joined.get(key, ())
        if tid not in tids:
            self.joined[key] = (*tids, tid)
            self.step_joined.append(key)

    def _take_joined(self, tid: int) -> tuple[tuple[int, str], ...]:
        """Thread ``tid`` takes a step: the reads its last step joined are behind it once
        the step makes progress (program order, in a finer execution too). Removes and
        returns their records: :meth:`_after_take` puts them back if it did not."""
        out = []
        for key, tids in list(self.joined.items()):
            if tid in tids:
                rest = tuple(u for u in tids if u != tid)
                if rest:
                    self.joined[key] = rest
                else:
                    del self.joined[key]
                out.append(key)
        return tuple(out)

    def _after_take(self, tid: int, taken: tuple[tuple[int, str], ...],
                    progressed: bool) -> Footprint:
        """After ``tid``'s step: a failed attempt (a lock or wait that blocked at once)
        keeps the records ``taken`` (nothing of the thread's moved: the state stays one
        state whether or not it tried); a step that progressed clears them and reads their
        fields in its footprint, so that a write of one is ordered against it as against
        the step that read it: whether the record is there at the write is the same in
        every equivalent execution."""
        if not progressed:
            for key in taken:
                tids = self.joined.get(key, ())
                if tid not in tids:
                    self.joined[key] = (*tids, tid)
            return ()
        return tuple((i, f, False) for i, f in taken)

    def _stable_writes(self, tid: int, fp: Footprint) -> None:
        """After a step of ``tid`` with footprint ``fp``: a write or free of a stable field
        that another thread's last step read joined to it promotes the field (in a finer
        execution that read may come after this write: it was no left mover); and the
        first write of a stable field, or free of an object with stable fields, by a model
        thread is learnt (the records of such fields join the fingerprint: stable.py)."""
        joined = self.joined
        for i, f, w in fp:
            if not w or i < 0:
                continue
            obj = self.objects[i]
            cls = type(obj)
            if f == ALL_FIELDS:
                fields = stable_fields(cls)
                if not fields:
                    continue
                self.knowledge.learn(written_key(cls, ALL_FIELDS))
                keys = [k for k in joined if k[0] == i]
            else:
                kind = self._stable_cache.get((cls, f))
                if kind is None:
                    kind = self._stable_cache[(cls, f)] = \
                        written_key(cls, f) if any(x.name == f for x in stable_fields(cls)) \
                        else ""
                if not kind:
                    continue
                self.knowledge.learn(kind)
                fields = tuple(x for x in stable_fields(cls) if x.name == f)
                keys = [(i, f)] if (i, f) in joined else []
            for key in keys:
                if any(u != tid for u in joined[key]):
                    self.knowledge.learn(promoted_key(cls, key[1]))
            self._eager_promotions(tid, obj, fields)

    def _eager_promotions(self, tid: int, obj: Shared, fields: tuple[Stable[Any], ...]
                          ) -> None:
        """Promote each of ``fields`` (just written or freed by ``tid``) that another
        thread holds a pin on now. Not what soundness rests on (``_stable_writes`` is): a
        write while a reader is pinned is where a joined read would be overtaken, so this
        finds the promotion in the first executions that write, instead of waiting for one
        in which the read happens to be in the reader's last step."""
        for s in fields:
            k = promoted_key(type(obj), s.name)
            if k in self.knowledge:
                continue
            for u in self.threads:
                if u.tid == tid:
                    continue
                try:
                    ok, _ = self._pinned(obj, s, u.name)
                except Exception as e:
                    self._set_finding(self.threads[tid], EXCEPTION, "exception",
                                      f"the pinned predicate of {obj.name}: {e!r}")
                    return
                if ok:
                    self.knowledge.learn(k)
                    break

    def _joined_key(self) -> int:
        """The fingerprint's part for the joined stable reads of fields that threads write
        or free (the others can never be written under a reader: learnt, stable.py)."""
        h = 0
        known = self.knowledge
        for (i, f), tids in self.joined.items():
            cls = type(self.objects[i])
            if written_key(cls, f) in known or written_key(cls, ALL_FIELDS) in known:
                for u in tids:
                    h ^= _joined_hash(u, (i, f))
        return h


def _joined_hash(tid: int, key: tuple[int, str]) -> int:
    """The contribution of one joined-read record to the state's fingerprint."""
    return digest(repr((tid, *key)).encode())
