"""The verdict matrix as a terminal table, as wide as the console it is printed on.

At 120 columns and more each row names its variant and scenario; below that the variant
heads its group of rows and the verdict column takes the room. Reasons are shortened to
fit two lines (the whole reason is in ``--format json`` and in ``pfnlab check``).
"""

from __future__ import annotations

import textwrap

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pfnlab.verdicts import HOLDS, NA, NOT_COVERED, NOT_ESTABLISHED, VIOLATED, Cell

#: below this many columns the variant heads its rows instead of having a column
WIDE = 120
#: the verdict column is never narrower than this (the table wraps past the console)
MIN_VERDICT = 24


#: the symbols of a cell, and their ASCII forms (a console that cannot show them)
SYMBOLS = {"x": "✘", "ok": "✔", "...": "…"}


def _sym(name: str, ascii_only: bool) -> str:
    return name if ascii_only else SYMBOLS[name]


def _short(s: str, n: int, ell: str = "…") -> str:
    n = max(n, 4)
    return s if len(s) <= n else s[: n - len(ell)] + ell


def _lines(text: str, width: int, first: int = 0, most: int = 2, ell: str = "…") -> str:
    """``text`` wrapped to ``width`` (the first line ``first`` columns shorter, later
    lines indented two), at most ``most`` lines: the last one ends in "…" if cut."""
    width = max(width, first + 8)
    lines = textwrap.wrap(text, width, initial_indent=" " * first, subsequent_indent="  ",
                          break_on_hyphens=False, break_long_words=False)
    if len(lines) > most:
        lines = lines[:most]
        last = lines[-1]
        lines[-1] = last + ell if len(last) + len(ell) <= width else _short(last, width, ell)
    return "\n".join(lines)[first:]


def cell_text(c: Cell, width: int = 72, ascii_only: bool = False) -> Text:
    """What one cell says, each line at most ``width`` wide: the violated properties with
    their reasons, what holds, what is not covered or not established and why
    (``ascii_only``: no symbol outside ASCII)."""
    ell = _sym("...", ascii_only)
    t = Text()
    held = [p for p, v in c.verdicts.items() if v.verdict == HOLDS]
    nc = [p for p, v in c.verdicts.items() if v.verdict == NOT_COVERED]
    na = [p for p, v in c.verdicts.items() if v.verdict == NA]
    ne = [p for p, v in c.verdicts.items() if v.verdict == NOT_ESTABLISHED]
    for err in c.model_errors:
        t.append("model error ", style="bold magenta")
        t.append(_lines(err, width, first=12, most=3, ell=ell) + "\n")
    for p, v in c.verdicts.items():
        if v.verdict == VIOLATED:
            head = f"{_sym('x', ascii_only)} {p}: "
            t.append(head[:-2], style="bold red")
            if len(head) + 12 > width:  # too little room left: the reason on lines of its own
                t.append(":\n  " + _lines(v.reason, width, first=2, ell=ell) + "\n")
            else:
                t.append(": " + _lines(v.reason, width, first=len(head), ell=ell) + "\n")
    if held:
        line = f"{_sym('ok', ascii_only)} {len(held)} hold"
        if not c.violated() and not nc and not ne and len(held) <= 3:
            names = f" ({', '.join(held)})"
            line += names if len(line) + len(names) <= width else ""
        t.append(line + "\n", style="green")
    for label, props in (("not covered", nc), ("not established", ne)):
        if not props:
            continue
        # named when there are few, as "hold" is: --format json lists every one
        head = (f"? {label}: {', '.join(props)}" if len(props) <= 3
                else f"? {len(props)} {label}")
        lines = textwrap.wrap(head, width, subsequent_indent="  ", break_on_hyphens=False)
        t.append("\n".join(lines), style="yellow")
        t.append("\n  " + _lines(c.verdicts[props[0]].reason, width, first=2, ell=ell)
                 + "\n")
    if na:
        t.append(f"{len(na)} n/a", style="dim")
    t.rstrip()
    return t


def _total(cells: list[Cell], total_seconds: float, dash: str = "—") -> str:
    counts = {s: sum(1 for c in cells if c.status() == s) for s in
              (HOLDS, VIOLATED, NOT_COVERED, NOT_ESTABLISHED, "model-error")}
    execs = sum(c.executions for c in cells)
    line = (f"total: {len(cells)} cells {dash} {counts[HOLDS]} hold everything, "
            f"{counts[VIOLATED]} with violations, {counts[NOT_COVERED]} not fully covered")
    if counts[NOT_ESTABLISHED]:
        line += f", {counts[NOT_ESTABLISHED]} with properties masked by findings"
    if counts["model-error"]:
        line += f", {counts['model-error']} with model errors"
    return f"{line}; {execs:,} executions; {total_seconds:.1f} s"


def render_matrix(cells: list[Cell], console: Console, total_seconds: float) -> None:
    """Print one row per (variant, scenario), fitted to ``console.width``, and a total
    line (wrapped to the width)."""
    width = console.width
    wide = width >= WIDE
    ascii_only = not (console.encoding or "").lower().startswith("utf")
    execs = [f"{c.executions:,}" for c in cells]
    times = [f"{c.seconds:.1f}s" for c in cells]
    w_var = max([len("variant"), *(len(c.variant) for c in cells)])
    w_sc = max([len("scenario"), *(len(c.scenario) + (0 if wide else 2) for c in cells)])
    w_ex = max([len("execs"), *map(len, execs)])
    w_t = max([len("time"), *map(len, times)])
    fixed = w_sc + w_ex + w_t + (w_var if wide else 0)
    ncols = 5 if wide else 4
    # between two columns: a space of padding each side and the (blank) divider
    verdict_w = max(MIN_VERDICT, width - fixed - 3 * (ncols - 1))

    table = Table(box=box.SIMPLE_HEAVY, show_lines=False, pad_edge=False, show_edge=False,
                  safe_box=True)
    if wide:
        table.add_column("variant", style="bold", no_wrap=True, width=w_var)
    table.add_column("scenario", no_wrap=True, width=w_sc)
    table.add_column("verdict", width=verdict_w, overflow="fold")
    table.add_column("execs", justify="right", no_wrap=True, width=w_ex)
    table.add_column("time", justify="right", no_wrap=True, width=w_t)
    last = ""
    for c, ex, tm in zip(cells, execs, times, strict=True):
        if c.variant != last:
            if last:
                table.add_section()
            if not wide:
                table.add_row(Text(c.variant, style="bold"), "", "", "")
        name = c.variant if c.variant != last else ""
        last = c.variant
        verdict = cell_text(c, verdict_w, ascii_only)
        if wide:
            table.add_row(name, c.scenario, verdict, ex, tm)
        else:
            table.add_row("  " + c.scenario, verdict, ex, tm)
    console.print(table)
    lines = textwrap.wrap(_total(cells, total_seconds, "-" if ascii_only else "—"),
                          max(40, width),
                          subsequent_indent="  ", break_on_hyphens=False)
    console.print("\n".join(lines), soft_wrap=True, highlight=False)


def sweep_text(c: Cell, ascii_only: bool = False) -> str:
    """A sweep cell in a few characters: the violated properties' invariant ids after a
    cross, a check mark when every property holds, else what the cell is."""
    from pfnlab.properties import PROPERTIES

    st = c.status()
    if st == VIOLATED:
        ids = [PROPERTIES[p].invariant if p in PROPERTIES else p for p in c.violated()]
        return f"{_sym('x', ascii_only)} {','.join(ids)}"
    if st == HOLDS:
        return _sym("ok", ascii_only)
    return {"model-error": "model error", NOT_COVERED: "not covered",
            NOT_ESTABLISHED: "not established"}.get(st, st)


def render_sweep(cells: list[Cell], console: Console, total_seconds: float) -> None:
    """One row per (scenario, sizes, host mm), one column per variant, and a total line."""
    ascii_only = not (console.encoding or "").lower().startswith("utf")
    variants = list(dict.fromkeys(c.variant for c in cells))
    rows: dict[tuple[str, str, str], dict[str, Cell]] = {}
    for c in cells:
        sizes = " ".join(f"{k}={v}" for k, v in c.sizes.items())
        rows.setdefault((c.scenario, sizes, c.mm or "5.4"), {})[c.variant] = c
    table = Table(box=box.SIMPLE_HEAVY, pad_edge=False, show_edge=False, safe_box=True)
    table.add_column("scenario", no_wrap=True)
    table.add_column("sizes", no_wrap=True)
    table.add_column("mm", no_wrap=True)
    for v in variants:
        table.add_column(v, overflow="fold")
    last = ""
    for (sc, sizes, mm), by_variant in rows.items():
        if last and sc != last:
            table.add_section()
        table.add_row(sc if sc != last else "", sizes, mm,
                      *(sweep_text(by_variant[v], ascii_only) if v in by_variant else ""
                        for v in variants))
        last = sc
    console.print(table)
    lines = textwrap.wrap(_total(cells, total_seconds, "-" if ascii_only else "—"),
                          width=max(20, console.width))
    console.print("\n".join(lines), highlight=False, markup=False)
