"""A swarm's report (explore/search/swarm.py): what each member covered, as a table and as
JSON fields, and the verdict of a swarm with no finding, which never says "holds"."""

from __future__ import annotations

import io
import textwrap
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from pfnlab.explore.search.swarm import SwarmResult


def never_holds(res: SwarmResult) -> str:
    """The verdict of a swarm that found nothing: a swarm samples and bounds, so no
    number of members without a finding shows a property holds."""
    ran = sum(1 for m in res.members if m.runs)
    return (f"inconclusive: no finding in {ran} swarm search{'' if ran == 1 else 'es'} "
            f"({res.stats.executions:,} executions); a swarm never proves a property")


def rerun_line(res: SwarmResult) -> str:
    """How to run the same members again."""
    return (f"swarm seed {res.seed}: --seed {res.seed} runs the same {len(res.members)} "
            "members again")


def members_table(res: SwarmResult, width: int = 100, ascii_only: bool = False) -> str:
    """Each member's row (its search, executions, distinct states when it keeps them,
    seconds, the findings it showed), then what each covered, ``width`` wide."""
    table = Table(box=box.ASCII if ascii_only else box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("member")
    table.add_column("executions", justify="right", no_wrap=True)
    table.add_column("states", justify="right", no_wrap=True)
    table.add_column("seconds", justify="right", no_wrap=True)
    table.add_column("found")
    for r in res.members:
        found = ", ".join(f.split(":", 1)[1] for f in r.findings) or "-"
        table.add_row(str(r.member.index), r.member.label,
                      f"{r.executions:,}" if r.runs else "-",
                      f"{r.states:,}" if r.states is not None else "-",
                      f"{r.seconds:.1f}" if r.runs else "-", found)
    out = io.StringIO()
    Console(file=out, width=width, highlight=False, color_system=None, safe_box=True,
            no_color=True).print(table)
    lines = [line.rstrip() for line in out.getvalue().strip("\n").splitlines()]
    lines.append("what each member covered:")
    for r in res.members:
        runs = f" (ran {r.runs} times: facts other members learnt)" if r.runs > 1 else ""
        lines += textwrap.wrap(f"{r.member.index}: {r.coverage}{runs}", width,
                               initial_indent="  ", subsequent_indent="      ",
                               break_on_hyphens=False)
    return "\n".join(lines)


def swarm_json(res: SwarmResult) -> dict[str, Any]:
    """The swarm's fields in ``check --format json``: its seed, wall time and each
    member's configuration and coverage."""
    return {"seed": res.seed, "members_run": sum(1 for m in res.members if m.runs),
            "executions": res.stats.executions, "seconds": round(res.wall, 3),
            "members": [m.as_json() for m in res.members]}
