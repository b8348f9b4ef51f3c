"""Everything derived about one finding: its ledger, hang chains and causal core."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pfnlab.explain.causal import Causal, causal_core, conflicts
from pfnlab.explain.hangs import Chain, hang_chains
from pfnlab.explain.ledger import Ledger, build_ledger
from pfnlab.explore.findings import Finding, TraceStep
from pfnlab.explore.program import Program


@dataclass
class Analysis:
    """The derived parts of a finding's report."""

    finding: Finding
    ledger: Ledger
    chains: list[Chain]
    causal: Causal
    #: for a finding that ends its execution: the properties that no execution violates
    #: and that the executions it ended leave unchecked (:func:`unchecked_after`)
    unchecked: list[str] = field(default_factory=list)

    def decisive(self) -> set[int]:
        """Steps the short trace shows even when they only read."""
        pair = {s for s in (self.causal.first, self.causal.second) if s is not None}
        if self.causal.via is not None:  # the write the later critical section never read
            pair.add(self.causal.via.index)
        if self.causal.window is not None:  # the lookup that opened the window, and the
            pair |= {st.index for st in self.causal.window}  # change that ran into it
        return self.ledger.decisive_steps() | pair

    def setup_end(self, keep: Iterable[int] = ()) -> int:
        """Where the race begins: the index of the first trace entry a short trace shows
        (0: from the start). For a finding a racing pair decides, the leading entries that
        are set-up unrelated to it are left out: ones that change no reference count, are
        not deciding, carry no note and conflict with no later step of another thread
        (nor are in ``keep``: steps another report needs shown)."""
        if self.causal.steps is None:
            return 0
        tr = self.finding.trace
        counted = {e.step for e in self.ledger.events}
        shown = self.decisive() | counted | set(keep)
        for k, st in enumerate(tr):
            if (st.index in shown or st.notes or k == len(tr) - 1
                    or any(o.thread != st.thread and conflicts(st, o) for o in tr[k + 1:])):
                return k
        return 0

    def setup_within(self, start: int, keep: Iterable[int] = ()) -> list[int]:
        """The trace entries from ``start`` (:meth:`setup_end`) up to the race's first
        step (the first of the causal core's steps) that are set-up unrelated to it, as
        the leading ones: they change no reference count, are not deciding, carry no note,
        are a plain access (not a lock, a wait or a free) and conflict with no step of
        another thread. Set-up a thread ran after another thread's first step that matters
        (a reference taken, a wait) but before the race (positions in the trace)."""
        c = self.causal
        if c.steps is None:
            return []
        tr = self.finding.trace
        firsts = [st.index for st in (*c.steps, *(c.window or ()))]
        if c.via is not None:
            firsts.append(c.via.index)
        counted = {e.step for e in self.ledger.events}
        shown = self.decisive() | counted | set(keep)
        out: list[int] = []
        for k in range(start, len(tr)):
            st = tr[k]
            if st.index >= min(firsts):
                break
            if (st.index in shown or st.notes or st.joined
                    or st.action not in ("read", "write", "rmw")
                    or any(o.thread != st.thread and conflicts(st, o) for o in tr)):
                continue
            out.append(k)
        return out


def analyse(program: Program, finding: Finding, deadline: float | None = None) -> Analysis:
    """Ledger, hang chains and causal core of ``finding`` (its trace must be recorded); the
    causal core stops at ``deadline`` (a ``time.perf_counter()`` value: the time budget)."""
    led = build_ledger(finding)
    return Analysis(finding, led, hang_chains(finding, led),
                    causal_core(program, finding, deadline=deadline))


def unchecked_after(finding: Finding, result: Any, props: Iterable[str]) -> list[str]:
    """The properties in ``props`` that the executions ``finding`` ended leave unchecked:
    the not established ones (violated nowhere, some execution cut short), when findings
    of ``finding``'s property cut some (``result``: the search's
    :class:`~pfnlab.explore.search.common.Result`, its ``masked_by``)."""
    from pfnlab.explore.search.common import not_established

    if finding.prop not in result.masked_by:
        return []
    return list(not_established(result, tuple(props)))


def _step_key(st: TraceStep) -> tuple[Any, ...]:
    return (st.index, st.thread, st.label, st.action, st.obj, st.field, repr(st.before),
            repr(st.after), st.failed_attempt)


def same_execution(findings: list[Finding]) -> list[tuple[int, int] | None]:
    """For each finding, ``(i, n)`` when an earlier finding ``i`` (an index into
    ``findings``) was shown by the same execution: its trace and this one agree on their
    first ``n`` entries and one of them is the other's start (n = the shorter length; of
    several such findings, the one that shares most, the first of those); None for a
    finding whose trace must be shown in full."""
    keys = [[_step_key(st) for st in f.trace] for f in findings]
    out: list[tuple[int, int] | None] = []
    for k, kk in enumerate(keys):
        found: tuple[int, int] | None = None
        for i in range(k):
            n = min(len(kk), len(keys[i]))
            if n and kk[:n] == keys[i][:n] and (found is None or n > found[1]):
                found = (i, n)
        out.append(found)
    return out

