"""Hang chains: for each blocked thread, what it waits for, down to who holds it up.

A wait names the fields its condition read (``TraceStep.reads``). The chain follows the mm
model's pinning rules, using the state where the execution stopped (``Finding.state``) and
the reference ledger (:mod:`pfnlab.report.ledger`):

- ``pgmap:X.done`` completes when the pgmap's percpu_ref count reaches 0: the count is held
  by each page of the pgmap whose refcount is above 0 (a device page holds one pgmap
  reference until its refcount drops to 0) and by gets of the ref never put;
- a page's refcount is held by the owners in its ledger (``Page.owners``), each traced back
  to its get (or to set-up) and, when never put, to why (:class:`~pfnlab.report.ledger.Leak`);
- a lock is held by its owner thread; other waits are printed as they are.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from pfnlab.explore.findings import HANG, Finding, TraceStep
from pfnlab.report.ledger import Ledger, build_ledger, counter_name


@dataclass
class Chain:
    """One blocked thread: the wait and the links below it (outermost first)."""

    thread: str
    step: int | None
    function: str
    waits_for: str
    links: list[str] = field(default_factory=list)

    def lines(self, width: int = 80) -> list[str]:
        """``memunmap_pages waits on pgmap dax0 done``, then ``<- ...`` lines."""
        at = f" (step {self.step})" if self.step is not None else ""
        out = textwrap.wrap(f"{self.thread}: {self.function} waits on {self.waits_for}{at}",
                            width, subsequent_indent="    ")
        for i, ln in enumerate(self.links):
            ind = "  " + "  " * min(i, 4)
            out += textwrap.wrap("<- " + ln, width, initial_indent=ind,
                                 subsequent_indent=ind + "   ")
        return out

    def one_line(self) -> str:
        """The whole chain on one line (JSON, logs)."""
        return " <- ".join([f"{self.function} waits on {self.waits_for}", *self.links])

    def as_json(self) -> dict[str, Any]:
        """JSON object (see the schema's ``hangChain``)."""
        return {"thread": self.thread, "step": self.step, "function": self.function,
                "waits_for": self.waits_for, "links": self.links, "text": self.one_line()}


def _last_wait(trace: list[TraceStep], thread: str) -> TraceStep | None:
    for st in reversed(trace):
        if st.thread == thread:
            return st if st.action in ("wait", "lock") and st.failed_attempt else None
    return None


def _caller(where: tuple[str, ...]) -> str:
    """The kernel function that waits: the caller of a bare wait helper, else the innermost."""
    if len(where) >= 2 and where[-1].startswith(("dev_pagemap_cleanup", "wait_", "synchronize")):
        return where[-2]
    return where[-1] if where else "?"


def hang_chains(finding: Finding, ledger: Ledger | None = None) -> list[Chain]:
    """The chains of a hang finding (empty for other kinds)."""
    if finding.kind != HANG:
        return []
    led = ledger or build_ledger(finding)
    state = finding.state
    waits: dict[str, str] = finding.details.get("waits", {})
    chains: list[Chain] = []
    for thread, what in waits.items():
        st = _last_wait(finding.trace, thread)
        fn = _caller(st.where) if st is not None else "?"
        ch = Chain(thread, st.index if st is not None else None, fn, what)
        if st is not None and st.action == "lock":
            owner = state.get(st.obj, {}).get("owner")
            ch.waits_for = f"lock {st.obj}"
            ch.links.append(f"held by {owner}" if owner else "held by nobody?")
        for r in st.reads if st is not None else ():
            obj, _, fld = r.rpartition(".")
            if obj.startswith("pgmap:") and fld == "done":
                ch.waits_for = f"{counter_name(obj)} done"
                ch.links += _pgmap_links(obj, state, led)
            elif obj.startswith("page@") and fld == "refcount":
                ch.waits_for = f"{counter_name(obj)} refcount"
                ch.links += _page_links(obj, state, led)
        chains.append(ch)
    return chains


def _pgmap_links(pgmap: str, state: dict[str, dict[str, Any]], led: Ledger) -> list[str]:
    ref = state.get(pgmap, {}).get("ref", (0, False))
    count, dead = int(ref[0]), bool(ref[1])
    holders: list[str] = []
    pages: list[str] = []
    for name, fields in sorted(state.items()):
        if (name.startswith("page@") and str(fields.get("pgmap")) == pgmap
                and int(fields.get("refcount", 0)) > 0 and fields.get("_freed") is None):
            holders.append(counter_name(name))
            pages.append(name)
    for g in led.held(pgmap):
        holders.append(f"{g.thread} in {g.site} (step {g.step})")
    head = f"{counter_name(pgmap)} ref count {count}"
    if not dead:
        head += " (not killed)"
        holders.insert(0, "the initial reference")
    links = [head + (f": held by {', '.join(holders)}" if holders else "")]
    for p in pages:
        links += _page_links(p, state, led)
    return links


def _page_links(page: str, state: dict[str, dict[str, Any]], led: Ledger) -> list[str]:
    fields = state.get(page, {})
    refcount = int(fields.get("refcount", 0))
    owners = dict(fields.get("owners", ()))
    links = [f"{counter_name(page)} refcount {refcount}"
             + (f": held by {', '.join(o for o, n in owners.items() if n > 0)}" if owners
                else "")]
    leaks = {lk.get.owner: lk for lk in led.leaks if lk.get.obj == page}
    for owner, n in owners.items():
        if n <= 0:
            continue
        lk = leaks.get(owner)
        if lk is not None:
            g = lk.get
            s = f"reference of {owner} taken in {g.site} (step {g.step}), leaked"
            if lk.skipped_by:
                s += f": {lk.skipped_by} skipped the put at step {lk.skipped_at}"
                if lk.because:
                    s += f" because {lk.because}"
            links.append(s)
        elif any(g.owner == owner for g in led.held(page)):
            g = next(g for g in led.held(page) if g.owner == owner)
            links.append(f"reference of {owner} taken in {g.site} (step {g.step}), not yet "
                         "put")
        else:
            links.append(f"reference of {owner}, held since set-up")
    return links


def render_hang(chains: list[Chain]) -> list[str]:
    """The hang section of a text report."""
    out: list[str] = []
    for ch in chains:
        out += ch.lines()
    return out
