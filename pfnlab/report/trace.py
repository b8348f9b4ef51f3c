"""A finding's trace as mail-ready text: one column per thread, at most 80 columns."""

from __future__ import annotations

import textwrap
from typing import Any

from pfnlab.explore.findings import Finding, TraceStep

WIDTH = 80


def _val(v: Any) -> str:
    if isinstance(v, tuple) and len(v) > 3:
        return "(" + ", ".join(_val(x) for x in v[:3]) + ", …)"
    s = repr(v) if isinstance(v, str) else str(v)
    return s


def step_lines(st: TraceStep) -> list[str]:
    """The kernel function and what the step did, as short lines."""
    fn = " > ".join(st.where[-3:]) if st.where else st.thread
    if st.action == "wait":
        what = f"wait: {st.field}" + (" (not yet)" if st.failed_attempt else "")
    elif st.action == "lock":
        what = f"lock {st.obj}" + (" (contended)" if st.failed_attempt else "")
    elif st.action == "unlock":
        what = f"unlock {st.obj}"
    elif st.action in ("srcu_read_lock", "srcu_read_unlock"):
        what = f"{st.action} {st.obj}"
    elif st.action == "free":
        what = f"free {st.obj}"
    elif st.action == "read":
        what = f"{st.obj}.{st.field} = {_val(st.before)}"
    else:
        what = f"{st.obj}.{st.field} {_val(st.before)} -> {_val(st.after)}"
    return [fn + "()", "  " + what]


def render_trace(finding: Finding, threads: list[str] | None = None,
                 full: bool = True) -> str:
    """Columns per thread, one row per step, wrapped to fit 80 columns."""
    trace = finding.trace
    names = threads or list(dict.fromkeys(s.thread for s in trace))
    ncol = max(1, len(names))
    colw = max(12, (WIDTH - 5) // ncol - 1)
    out = []
    head = "     " + " ".join(n.ljust(colw)[:colw] for n in names)
    out.append(head.rstrip())
    out.append("     " + " ".join(("-" * min(colw, max(4, len(n) + 2))).ljust(colw)
                                 for n in names).rstrip())
    for st in trace:
        col = names.index(st.thread) if st.thread in names else 0
        lines: list[str] = []
        for ln in step_lines(st):
            lines.extend(textwrap.wrap(ln, colw) or [""])
        for i, ln in enumerate(lines):
            prefix = f"{st.index:3d}  " if i == 0 else "     "
            row = [" " * colw] * ncol
            row[col] = ln.ljust(colw)
            out.append((prefix + " ".join(row)).rstrip())
    return "\n".join(out)


def render_finding(title: str, finding: Finding) -> str:
    """A finding: what is violated, why, how minimal, and the trace."""
    lines = [f"{title}: {finding.prop} violated ({finding.kind})"]
    lines += textwrap.wrap(finding.message, WIDTH, initial_indent="  ",
                           subsequent_indent="  ")
    if finding.minimal:
        lines += textwrap.wrap(f"{finding.steps} steps, {finding.minimal}", WIDTH,
                               initial_indent="  ", subsequent_indent="  ")
    lines.append("")
    lines.append(render_trace(finding))
    return "\n".join(lines)
