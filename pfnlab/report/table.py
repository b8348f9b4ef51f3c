"""The verdict matrix as a terminal table."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pfnlab.matrix import HOLDS, NA, NOT_COVERED, NOT_ESTABLISHED, VIOLATED, Cell


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def cell_text(c: Cell, width: int = 72) -> Text:
    """What one cell says: the violated properties with reasons, or what holds."""
    t = Text()
    held = [p for p, v in c.verdicts.items() if v.verdict == HOLDS]
    nc = [p for p, v in c.verdicts.items() if v.verdict == NOT_COVERED]
    na = [p for p, v in c.verdicts.items() if v.verdict == NA]
    ne = [p for p, v in c.verdicts.items() if v.verdict == NOT_ESTABLISHED]
    for err in c.model_errors:
        t.append("model error ", style="bold magenta")
        t.append(_short(err, width - 12) + "\n")
    for p, v in c.verdicts.items():
        if v.verdict == VIOLATED:
            t.append(f"✘ {p}", style="bold red")
            t.append(": " + _short(v.reason, max(10, width - len(p) - 4)) + "\n")
    if held:
        t.append(f"✔ {len(held)} hold", style="green")
        if not c.violated() and not nc and not ne:
            t.append(f" ({', '.join(held)})" if len(held) <= 3 else "")
        t.append("\n")
    if nc:
        t.append(f"? not covered: {', '.join(nc)}", style="yellow")
        t.append(" — " + _short(c.verdicts[nc[0]].reason, width) + "\n")
    if ne:
        t.append(f"? not established: {', '.join(ne)}", style="yellow")
        t.append(" — " + _short(c.verdicts[ne[0]].reason, width) + "\n")
    if na:
        t.append(f"{len(na)} n/a", style="dim")
    return t


def render_matrix(cells: list[Cell], console: Console, total_seconds: float) -> None:
    """Print one row per (variant, scenario) and a total line."""
    table = Table(box=box.SIMPLE_HEAVY, show_lines=False, pad_edge=False)
    table.add_column("variant", style="bold", no_wrap=True)
    table.add_column("scenario", no_wrap=True)
    table.add_column("verdict")
    table.add_column("execs", justify="right")
    table.add_column("time", justify="right")
    last = ""
    for c in cells:
        name = c.variant if c.variant != last else ""
        if c.variant != last and last:
            table.add_section()
        last = c.variant
        table.add_row(name, c.scenario, cell_text(c), f"{c.executions:,}", f"{c.seconds:.1f}s")
    console.print(table)
    n = len(cells)
    counts = {s: sum(1 for c in cells if c.status() == s) for s in
              (HOLDS, VIOLATED, NOT_COVERED, NOT_ESTABLISHED, "model-error")}
    execs = sum(c.executions for c in cells)
    line = (f"total: {n} cells — {counts[HOLDS]} hold everything, {counts[VIOLATED]} with "
            f"violations, {counts[NOT_COVERED]} not fully covered")
    if counts[NOT_ESTABLISHED]:
        line += f", {counts[NOT_ESTABLISHED]} with properties masked by findings"
    if counts["model-error"]:
        line += f", {counts['model-error']} with model errors"
    console.print(f"{line}; {execs:,} executions; {total_seconds:.1f} s")
