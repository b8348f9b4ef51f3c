"""Hang chains: for each blocked thread, what it waits for, down to who holds it up.

A wait names the fields its condition read (``TraceStep.reads``). The chain follows the mm
model's pinning rules, using the state where the execution stopped (``Finding.state``) and
the reference ledger (:mod:`pfnlab.explain.ledger`):

- ``pgmap:X.done`` completes when the pgmap's percpu_ref count reaches 0: the count is held
  by each page of the pgmap whose refcount is above 0 (a device page holds one pgmap
  reference until its refcount drops to 0) and by gets of the ref never put;
- a page's refcount is held by the owners in its ledger (``Page.owners``), each traced back
  to its get (or to set-up) and, when never put, to why (:class:`~pfnlab.explain.ledger.Leak`);
- a lock is held by its owner thread; other waits are kept as the engine names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pfnlab.explain.ledger import Leak, Ledger, RefEvent, build_ledger, counter_name
from pfnlab.explore.findings import HANG, Finding, TraceStep


@dataclass
class LockHeld:
    """A lock waited for, and its owner thread when the execution stopped."""

    owner: str | None


@dataclass
class PgmapHeld:
    """A pgmap's percpu_ref count when the execution stopped, and what holds it."""

    pgmap: str                 # model name, "pgmap:dax0"
    count: int
    killed: bool               # percpu_ref_kill dropped the initial reference
    pages: list[str] = field(default_factory=list)       # its pages with a refcount above 0
    gets: list[RefEvent] = field(default_factory=list)   # gets of the ref never put


@dataclass
class PageHeld:
    """A page's refcount when the execution stopped, and its ledger's owners."""

    page: str                  # model name, "page@0x104"
    refcount: int
    owners: dict[str, int] = field(default_factory=dict)


@dataclass
class OwnerHeld:
    """One owner's reference on a page: leaked, taken and not yet put, or held since set-up
    (neither)."""

    owner: str
    leak: Leak | None = None
    get: RefEvent | None = None


#: one link of a chain, outermost first
Link = LockHeld | PgmapHeld | PageHeld | OwnerHeld


@dataclass
class Chain:
    """One blocked thread: the wait and the links below it (outermost first)."""

    thread: str
    step: int | None
    function: str
    waits_for: str
    links: list[Link] = field(default_factory=list)


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
            ch.waits_for = f"lock {st.obj}"
            ch.links.append(LockHeld(state.get(st.obj, {}).get("owner")))
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


def _pgmap_links(pgmap: str, state: dict[str, dict[str, Any]], led: Ledger) -> list[Link]:
    ref = state.get(pgmap, {}).get("ref", (0, False))
    pages = [name for name, fields in sorted(state.items())
             if (name.startswith("page@") and str(fields.get("pgmap")) == pgmap
                 and int(fields.get("refcount", 0)) > 0 and fields.get("_freed") is None)]
    links: list[Link] = [PgmapHeld(pgmap, int(ref[0]), bool(ref[1]), pages, led.held(pgmap))]
    for p in pages:
        links += _page_links(p, state, led)
    return links


def _page_links(page: str, state: dict[str, dict[str, Any]], led: Ledger) -> list[Link]:
    fields = state.get(page, {})
    owners = dict(fields.get("owners", ()))
    links: list[Link] = [PageHeld(page, int(fields.get("refcount", 0)), owners)]
    leaks = {lk.get.owner: lk for lk in led.leaks if lk.get.obj == page}
    for owner, n in owners.items():
        if n <= 0:
            continue
        lk = leaks.get(owner)
        if lk is not None:
            links.append(OwnerHeld(owner, leak=lk))
        else:
            held = [g for g in led.held(page) if g.owner == owner]
            links.append(OwnerHeld(owner, get=held[0] if held else None))
    return links
