"""Benchmark: brute force against the reduced search on a fixed set of programs.

Run from the repository root::

    python bench/run.py              # writes bench/results/bench.json and prints a table
    python bench/run.py --quick      # a smaller set, for a smoke run

For each program it runs brute-force enumeration (no reduction; budget-capped on the big
ones, and then marked as a lower bound) and source-set DPOR with sleep sets, with and
without state caching, and records executions, distinct states, steps, steps per second,
the reduction factor (brute-force executions / reduced executions) and wall time.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pfnlab.explore.program import Program  # noqa: E402
from pfnlab.explore.search import Budget  # noqa: E402
from pfnlab.explore.search.brute import explore_brute  # noqa: E402
from pfnlab.explore.search.dpor import explore_dpor  # noqa: E402
from pfnlab.scenarios import SCENARIOS  # noqa: E402
from pfnlab.variants import VARIANTS  # noqa: E402
from tests.engine.programs import (  # noqa: E402
    abba,
    atomic_counter,
    drain_hang,
    independent,
    lost_update,
    random_program,
)


def programs(quick: bool) -> list[tuple[str, Program, bool]]:
    """(name, program, run brute force) for every benchmark program."""
    out: list[tuple[str, Program, bool]] = [
        ("lost-update", lost_update(), True),
        ("atomic-counter", atomic_counter(), True),
        ("abba", abba(), True),
        ("drain-hang", drain_hang(), True),
        ("independent 3 threads x 1", independent(3, 1), True),
        ("independent 3 threads x 2", independent(3, 2), True),
        ("locks and waits (3 threads)", random_program(
            [[("cs", 0, [("r", 0), ("w", 0, 1)]), ("wait", 1, 1)],
             [("inc", 1), ("cs", 0, [("inc", 0)])],
             [("r", 1), ("w", 1, 0), ("inc", 0)]], 2, 1), True),
    ]
    cases = [("v5.3", "devdax-unbind", {}), ("v5.4", "devdax-unbind", {})]
    if not quick:
        out.append(("independent 4 threads x 2", independent(4, 2), True))
        cases += [("v5.4", "devdax-unbind", {"vcpus": 2}),
                  ("v5.4", "two-vcpu-same-gfn", {}),
                  ("v5.4", "dirty-log-collapse", {})]
    for v, s, sizes in cases:
        desc = ",".join(f"{k}={n}" for k, n in sizes.items())
        out.append((f"{v}/{s}" + (f" ({desc})" if desc else ""),
                    SCENARIOS[s].program(VARIANTS[v], **sizes), True))
    return out


def run(quick: bool, brute_seconds: float) -> list[dict[str, Any]]:
    """Run every program with every search; one record per (program, search)."""
    rows: list[dict[str, Any]] = []
    for name, prog, with_brute in programs(quick):
        brute_exec = None
        if with_brute:
            t0 = time.perf_counter()
            b = explore_brute(prog, Budget(seconds=brute_seconds), stop_first=False,
                              collect_final_states=False)
            rows.append(_row(name, "brute force", b, time.perf_counter() - t0, None))
            brute_exec = (b.stats.executions, b.exhaustive)
        for label, cache in (("dpor", False), ("dpor + state caching", True)):
            t0 = time.perf_counter()
            r = explore_dpor(prog, Budget(seconds=120), cache=cache, stop_first=False)
            rows.append(_row(name, label, r, time.perf_counter() - t0, brute_exec))
    return rows


def _row(name: str, search: str, res: Any, wall: float,
         brute: tuple[int, bool] | None) -> dict[str, Any]:
    st = res.stats
    row: dict[str, Any] = {
        "program": name,
        "search": search,
        "exhaustive": res.exhaustive,
        "executions": st.executions,
        "states": st.states if st.caching else None,
        "steps": st.steps,
        "steps_per_second": round(st.steps_per_second),
        "seconds": round(wall, 3),
        "findings": sorted({f.prop for f in res.findings}),
    }
    if brute is not None and st.executions:
        factor = brute[0] / st.executions
        row["reduction"] = round(factor, 1)
        row["reduction_is_lower_bound"] = not brute[1]
    return row


def main() -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smaller set of programs")
    ap.add_argument("--brute-seconds", type=float, default=60.0,
                    help="time cap of each brute-force run (default 60)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "bench.json"))
    args = ap.parse_args()
    rows = run(args.quick, args.brute_seconds)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "cpu": platform.processor(),
                    "system": platform.platform()},
        "results": rows,
    }, indent=2))
    table = Table(title="pfnlab benchmark: brute force vs reduced search")
    for col in ("program", "search", "executions", "states", "steps/s", "reduction", "time"):
        table.add_column(col, justify="left" if col in ("program", "search") else "right")
    for r in rows:
        red = ""
        if "reduction" in r:
            red = (">= " if r["reduction_is_lower_bound"] else "") + f"{r['reduction']}x"
        execs = f"{r['executions']:,}" + ("" if r["exhaustive"] else " (cut)")
        table.add_row(r["program"], r["search"], execs,
                      "" if r["states"] is None else f"{r['states']:,}",
                      f"{r['steps_per_second']:,}", red, f"{r['seconds']:.2f}s")
    Console(width=150).print(table)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
