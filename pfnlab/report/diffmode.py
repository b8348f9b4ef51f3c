"""Patch-diff mode's report: the properties one variant fixes or breaks, with the trace
that tells them apart (:mod:`pfnlab.patchdiff` computes them), as text or JSON."""

from __future__ import annotations

from typing import Any

from pfnlab.report.analysis import render_report
from pfnlab.verdicts import BOTH, BROKEN, FIXED, UNKNOWN, ScenarioDiff


def render_diff(a: str, b: str, diffs: list[ScenarioDiff], *, full: bool = False) -> str:
    """Text: a summary line per property, then the trace that tells each apart."""
    out: list[str] = [f"diff {a} -> {b}"]
    for sd in diffs:
        cov = ("exhaustive" if sd.exhaustive_a and sd.exhaustive_b
               else "NOT exhaustive: differences may be missed")
        out.append(f"{sd.scenario} ({cov}):")
        if not sd.props:
            out.append(f"  no difference: the same properties hold in {a} and {b}")
        for p in sd.props:
            label = {FIXED: f"fixed in {b}", BROKEN: f"broken in {b}",
                     BOTH: "violated in both", UNKNOWN: f"differs ({p.why})"}
            out.append(f"  {p.prop}: {label[p.change]}")
    for sd in diffs:
        for p in sd.props:
            if p.analysis is None or p.change == BOTH:
                continue
            out.append("")
            out.append("-" * 80)
            out.append(render_report(f"{p.found_in} / {sd.scenario}", p.analysis, full=full))
            out.append("")
            out.append(p.other)
    return "\n".join(out)


def diff_json(a: str, b: str, diffs: list[ScenarioDiff],
              mm: str | None = None) -> dict[str, Any]:
    """The ``pfnlab.diff/1`` document (see the schema)."""
    from pfnlab.report.jsonout import DIFF_SCHEMA, finding_json

    return {
        "schema": DIFF_SCHEMA, "variant_a": a, "variant_b": b, "mm": mm,
        "scenarios": [
            {"scenario": sd.scenario, "sizes": sd.sizes, "exhaustive_a": sd.exhaustive_a,
             "exhaustive_b": sd.exhaustive_b,
             "properties": [
                 {"property": p.prop, "change": p.change, "found_in": p.found_in,
                  "message_a": p.message_a, "message_b": p.message_b, "why": p.why,
                  "on_other_variant": p.other,
                  "finding": (finding_json(f"{p.found_in} / {sd.scenario}", p.analysis)
                              if p.analysis is not None else None)}
                 for p in sd.props]}
            for sd in diffs
        ],
    }
