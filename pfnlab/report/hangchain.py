"""Hang chains as text and JSON: the blocked thread's wait, then each link below it
(:mod:`pfnlab.explain.hangs` follows them)."""

from __future__ import annotations

import textwrap
from typing import Any

from pfnlab.explain.hangs import Chain, Link, LockHeld, PageHeld, PgmapHeld
from pfnlab.explain.ledger import counter_name


def link_text(link: Link) -> str:
    """``pgmap dax0 ref count 1: held by page 0x104``, ``reference of vcpu0:fault ...``."""
    if isinstance(link, LockHeld):
        return f"held by {link.owner}" if link.owner else "held by nobody?"
    if isinstance(link, PgmapHeld):
        holders = [counter_name(p) for p in link.pages]
        holders += [f"{g.thread} in {g.site} (step {g.step})" for g in link.gets]
        head = f"{counter_name(link.pgmap)} ref count {link.count}"
        if not link.killed:
            head += " (not killed)"
            holders.insert(0, "the initial reference")
        return head + (f": held by {', '.join(holders)}" if holders else "")
    if isinstance(link, PageHeld):
        held = ", ".join(o for o, n in link.owners.items() if n > 0)
        return (f"{counter_name(link.page)} refcount {link.refcount}"
                + (f": held by {held}" if link.owners else ""))
    if link.leak is not None:
        lk = link.leak
        s = f"reference of {link.owner} taken in {lk.get.site} (step {lk.get.step}), leaked"
        if lk.skipped_by:
            s += f": {lk.skipped_by} skipped the put at step {lk.skipped_at}"
            if lk.because:
                s += f" because {lk.because}"
        elif lk.handed_to and lk.already_held is not None:
            s += (f": handed to {lk.handed_to} at step {lk.handed_at}, which already held its "
                  f"pfn with the reference taken at step {lk.already_held}")
        elif lk.handed_to:
            s += f": handed to {lk.handed_to} at step {lk.handed_at} and never put from there"
        return s
    if link.get is not None:
        return (f"reference of {link.owner} taken in {link.get.site} (step "
                f"{link.get.step}), not yet put")
    return f"reference of {link.owner}, held since set-up"


def chain_lines(ch: Chain, width: int = 80) -> list[str]:
    """``memunmap_pages waits on pgmap dax0 done``, then ``<- ...`` lines."""
    at = f" (step {ch.step})" if ch.step is not None else ""
    out = textwrap.wrap(f"{ch.thread}: {ch.function} waits on {ch.waits_for}{at}",
                        width, subsequent_indent="    ")
    for i, link in enumerate(ch.links):
        ind = "  " + "  " * min(i, 4)
        out += textwrap.wrap("<- " + link_text(link), width, initial_indent=ind,
                             subsequent_indent=ind + "   ")
    return out


def chain_one_line(ch: Chain) -> str:
    """The whole chain on one line (JSON, logs)."""
    return " <- ".join([f"{ch.function} waits on {ch.waits_for}",
                        *(link_text(link) for link in ch.links)])


def chain_json(ch: Chain) -> dict[str, Any]:
    """JSON object (see the schema's ``hangChain``)."""
    return {"thread": ch.thread, "step": ch.step, "function": ch.function,
            "waits_for": ch.waits_for, "links": [link_text(link) for link in ch.links],
            "text": chain_one_line(ch)}


def render_hang(chains: list[Chain]) -> list[str]:
    """The hang section of a text report."""
    out: list[str] = []
    for ch in chains:
        out += chain_lines(ch)
    return out
