"""The reference ledger as text and JSON: leaks, underflows, then every get and put
(:mod:`pfnlab.explain.ledger` builds it from a trace)."""

from __future__ import annotations

import textwrap
from typing import Any

from pfnlab.explain.ledger import Leak, Ledger, RefEvent
from pfnlab.report.mailtrace import short


def why(e: RefEvent) -> str:
    """``"gup in hva_to_pfn_fast"``: the API and the kernel function that called it."""
    return f"{e.api} in {e.site}" if e.api and e.api != e.site else e.site


def event_json(e: RefEvent) -> dict[str, Any]:
    """JSON object (see the schema's ``refEvent``)."""
    return {
        "step": e.step, "thread": e.thread, "counter": e.counter,
        "delta": e.delta, "count_before": e.count_before,
        "count_after": e.count_after, "owner": e.owner, "function": e.site,
        "api": e.api, "match": e.match,
    }


def leak_sentence(lk: Leak) -> str:
    """One line for a mail: who took it, and why it was never put."""
    g = lk.get
    who = g.thread if g.owner in (g.thread, "") else f"{g.thread} ({g.owner})"
    s = f"{g.counter}: reference taken by {who} in {g.site} (step {g.step}) was never put"
    if lk.skipped_by:
        s += f": {lk.skipped_by} skipped it at step {lk.skipped_at}"
        if lk.because:
            s += f" because {lk.because}"
    elif lk.handed_to and lk.already_held is not None:
        pfn = g.counter.split()[-1]
        if lk.cleared_at is not None:
            # the field was cleared while the lookup ran, the reference it held not put
            held = (f"which held pfn {pfn} with the reference taken at step "
                    f"{lk.already_held} until {lk.cleared_by} set it to "
                    f"{short(lk.cleared_to)} at step {lk.cleared_at} without a put")
        else:
            held = (f"which already held pfn {pfn} with the reference taken at step "
                    f"{lk.already_held}")
        s += (f": {lk.handed_by} handed it to {lk.handed_to} at step {lk.handed_at}, "
              f"{held}; two references for one cached pfn")
        s += "" if lk.put_once is None else f", and one put (step {lk.put_once})"
    elif lk.handed_to:
        s += (f": {lk.handed_by} handed it to {lk.handed_to} at step {lk.handed_at}, and "
              "no put of it followed")
    elif lk.again_at is not None:
        s += (f": {g.thread} looked the page up again in {g.site} at step {lk.again_at} "
              "without a put of it (a retry that drops the reference it holds)")
    elif lk.returned:
        s += f": {g.owner} returned without a put of it (no release on its path)"
    elif lk.ended:
        s += f": {g.thread} ran to its end without a put of it"
    else:
        s += f": {g.thread} never reached a put of it"
    return s


def leak_json(lk: Leak) -> dict[str, Any]:
    """JSON object (see the schema's ``leak``)."""
    return {"get": event_json(lk.get), "skipped_by": lk.skipped_by,
            "skipped_at": lk.skipped_at, "because": lk.because,
            "handed_to": lk.handed_to or None, "handed_at": lk.handed_at,
            "already_held": lk.already_held, "cleared_at": lk.cleared_at,
            "again_at": lk.again_at,
            "sentence": leak_sentence(lk)}


def underflow_sentence(u: RefEvent) -> str:
    """``put by admin in memunmap_pages (step 50) had no matching get``."""
    return (f"{u.counter}: put by {u.thread} in {u.site} (step {u.step}, owner {u.owner}) "
            f"had no matching get (count {u.count_before} -> {u.count_after})")


def ledger_json(led: Ledger) -> dict[str, Any]:
    """JSON object (see the schema's ``ledger``)."""
    return {
        "events": [event_json(e) for e in led.events],
        "leaks": [leak_json(lk) for lk in led.leaks],
        "underflows": [{**event_json(u), "sentence": underflow_sentence(u)}
                       for u in led.underflows],
    }


def render_ledger(led: Ledger, *, leaks: bool = True, underflows: bool = True) -> list[str]:
    """The ledger section of a text report: leaks, underflows (unless the report said them
    already: ``leaks``, ``underflows`` false), then every get/put."""
    out: list[str] = []
    for lk in led.leaks if leaks else []:
        out += textwrap.wrap("leak: " + leak_sentence(lk), 80, subsequent_indent="  ")
    for u in led.underflows if underflows else []:
        out += textwrap.wrap("underflow: " + underflow_sentence(u), 80, subsequent_indent="  ")
    if led.events:
        out.append("references (step thread: change, owner, function):")
        for e in led.events:
            sign = "get" if e.delta > 0 else ("kill" if e.dead else "put")
            if e.dead:
                pair = "the initial reference"
            elif e.delta > 0:
                pair = "never put" if e.match is None else f"put at step {e.match}"
            else:
                pair = "held since set-up" if e.match is None else f"taken at step {e.match}"
            if e in led.underflows:
                pair = "NO MATCHING GET"
            line = (f"  {e.step:3d} {e.thread}: {sign} {e.counter} {e.count_before} -> "
                    f"{e.count_after}, {e.owner}, {why(e)}; {pair}")
            out += textwrap.wrap(line, 80, subsequent_indent="        ")
    return out
