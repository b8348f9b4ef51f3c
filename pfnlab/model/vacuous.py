"""Custom checks that never looked at the model: a check that holds vacuously.

A check of one's own (``instance(..., invariants=[...], final_checks=[...])``) that looks
its object up with a wrong key, in a plain dict made at set-up, gets None every time and
returns None ("holds") without reading a single shared field: it passes whatever the
design does. While a check runs inside :func:`watching`, every user check that
:func:`watched` wrapped records whether it was evaluated and whether it read shared state
(or returned a message) at least once; a check evaluated but never so is *vacuous*, and
``check`` says so ("check X never read any shared state: it holds vacuously") and lists it
in the JSON (``vacuous_checks``). The record is a collector (explore/collect.py), so the
workers of a parallel search record into it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pfnlab.explore import Check
from pfnlab.explore.collect import collecting
from pfnlab.explore.shared import HOOKS


@dataclass
class CheckReads:
    """Which user checks were evaluated, and which of them ever read shared state."""

    evaluated: set[str] = field(default_factory=set)
    read: set[str] = field(default_factory=set)

    def fresh(self) -> CheckReads:
        """An empty record, for one task of a parallel search."""
        return CheckReads()

    def merge(self, other: CheckReads) -> None:
        """Add what ``other`` (a task's record, back from its worker) saw."""
        self.evaluated |= other.evaluated
        self.read |= other.read

    @contextmanager
    def activate(self) -> Iterator[CheckReads]:
        """Record the evaluations of watched checks made inside this block here."""
        _ACTIVE.append(self)
        try:
            yield self
        finally:
            _ACTIVE.remove(self)

    def vacuous(self) -> list[str]:
        """The checks evaluated that never read shared state nor failed, sorted."""
        return sorted(self.evaluated - self.read)


_ACTIVE: list[CheckReads] = []


@contextmanager
def watching() -> Iterator[CheckReads]:
    """Record, inside this block, which watched checks ever read shared state."""
    rec = CheckReads()
    with collecting(rec):
        yield rec


def watched(check: Check) -> Check:
    """``check``, recording each evaluation into the record :func:`watching` made active
    (nothing outside one). An evaluation reads shared state when the engine saw it read a
    field (its read set, ``peek``, is not empty) or it returned a message."""
    fn, name = check.fn, check.name

    def run() -> object:
        out = fn()
        if _ACTIVE:
            rec = _ACTIVE[-1]
            rec.evaluated.add(name)
            if name not in rec.read:
                rt = HOOKS.current
                if out is not None or (rt is not None and getattr(rt, "peek", None)):
                    rec.read.add(name)
        return out

    return dataclasses.replace(check, fn=run)

