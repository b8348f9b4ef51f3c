"""Benchmark: the classic DPOR benchmarks against the published optimal and source-DPOR counts.

Run from the repository root::

    python bench/dpor_suite.py                      # the default sizes, 2-4 minutes on 2 cores
    python bench/dpor_suite.py --large              # adds the literature's large sizes
    python bench/dpor_suite.py --sizes lastzero=5,10,15 --sizes mpat=5 --seconds 600

The programs (readers, lastzero, indexer with CAS and with a mutex per slot, filesystem,
mpat, multiprodcon, fib_bench) are plain pfnlab programs written through the engine's
public API (``tests/engine/dpor_benchmarks.py``, one function each, translated from the C
sources named there). Each size is explored by source-set DPOR with sleep sets
(``explore_dpor``, every finding) twice, with state caching off and on, and by optimal
DPOR with wakeup trees (``explore_optimal``, docs/reductions.md section 14; no caching).

Columns, from the search's statistics (``Stats``): *complete* executions (every thread
finished), sleep-set-*blocked* ones (``sleep_blocked``: cut because every enabled thread
was asleep), *pruned* ones (cut at a state visited before; cached search only) and the
*total* (``executions``: all of them; it also counts hangs and executions ended by a
finding, none of which these correct programs have). A run cut by ``--seconds`` is marked
"cut" and its numbers are lower bounds.

Next to them: the published optimal count (Mazurkiewicz traces) and the published
source-DPOR count (complete + sleep-set blocked), with where each number comes from
(``tests/engine/dpor_published.py``: repository, commit, file, line and size); "n/a"
where no number was published for that size. Results go to
bench/results/dpor_suite.json.

Where the programs take locks the columns are not the same unit: pfnlab's locks are movers
(an acquire runs on into the next access, a release joins the one before it), so a critical
section is one step and two that touch no shared data commute, while the published counts
order every pair of acquisitions of one mutex. pfnlab may then run fewer complete
executions than the published optimum without missing a behaviour (mpat(2): 4, where the
C program has 8 lock-order traces). A held lock makes its acquirer not enabled, as in
Nidhugg, so contended hand-offs are counted as there. On readers, lastzero and indexer every
shared event is a data access and the numbers compare directly.
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

from pfnlab.explore.search import Budget  # noqa: E402
from pfnlab.explore.search.dpor import explore_dpor  # noqa: E402
from pfnlab.explore.search.optimal import explore_optimal  # noqa: E402
from tests.engine.dpor_benchmarks import BENCHMARKS  # noqa: E402
from tests.engine.dpor_published import OPTIMAL, SOURCE_DPOR, Published  # noqa: E402

#: sizes run by default (2 minutes on an idle 2-core machine, 3.5 with the other core busy)
DEFAULT_SIZES: dict[str, list[int]] = {
    "readers": [2, 6, 8],
    "lastzero": [5, 10],
    "indexer": [12, 13],
    "indexer-mutex": [12, 13],
    "filesystem": [14, 16],
    "mpat": [2, 3, 4],
    "multiprodcon": [2],
    "fib_bench": [2, 3],
}

#: sizes ``--large`` adds: the rest of the literature's sizes (several need hours uncapped)
LARGE_SIZES: dict[str, list[int]] = {
    "readers": [13],
    "lastzero": [15],
    "indexer": [15],
    "filesystem": [18, 19],
    "mpat": [5, 6],
    "multiprodcon": [3],
    "fib_bench": [4, 5],
}

#: what the size parameter means, per benchmark
SIZE_MEANS: dict[str, str] = {
    "readers": "N readers",
    "lastzero": "N writers",
    "indexer": "N threads",
    "indexer-mutex": "N threads",
    "filesystem": "N threads",
    "mpat": "K pairs of threads",
    "multiprodcon": "producers (5 workers)",
    "fib_bench": "NUM iterations",
}


def run_one(name: str, size: int, cache: bool, seconds: float,
            wakeup: bool = False) -> dict[str, Any]:
    """Explore one benchmark at one size (``wakeup``: with optimal DPOR, no cache); the
    counts the table shows."""
    program = BENCHMARKS[name](size)
    t0 = time.perf_counter()
    if wakeup:
        res = explore_optimal(program, Budget(seconds=seconds), stop_first=False)
    else:
        res = explore_dpor(program, Budget(seconds=seconds), cache=cache, stop_first=False)
    wall = time.perf_counter() - t0
    st = res.stats
    return {
        "cache": cache,
        "exhaustive": res.exhaustive,
        "complete": st.complete,
        "blocked": st.sleep_blocked,
        "pruned": st.pruned,
        "hangs": st.hangs,
        "findings": st.findings,
        "total": st.executions,
        "states": st.states if st.caching else None,
        "steps": st.steps,
        "seconds": round(wall, 3),
        "verdicts": sorted({f.prop for f in res.findings}),
        "coverage": res.coverage,
    }


def published(table: dict[tuple[str, int], Published], name: str,
              size: int) -> dict[str, Any] | None:
    """The published count for (name, size) as JSON, or None."""
    p = table.get((name, size))
    if p is None:
        return None
    return {"complete": p.complete, "blocked": p.blocked, "total": p.total,
            "source": p.source}


def run(sizes: dict[str, list[int]], seconds: float) -> list[dict[str, Any]]:
    """Every (benchmark, size), uncached and cached, next to the published counts."""
    rows = []
    for name, ns in sizes.items():
        for n in ns:
            rows.append({
                "benchmark": name,
                "size": n,
                "size_means": SIZE_MEANS[name],
                "uncached": run_one(name, n, False, seconds),
                "cached": run_one(name, n, True, seconds),
                "wakeup_trees": run_one(name, n, False, seconds, wakeup=True),
                "optimal": published(OPTIMAL, name, n),
                "source_dpor": published(SOURCE_DPOR, name, n),
            })
    return rows


def parse_sizes(specs: list[str], large: bool) -> dict[str, list[int]]:
    """The sizes to run: the defaults (plus the large ones), or those ``--sizes`` names."""
    if not specs:
        out = {k: list(v) for k, v in DEFAULT_SIZES.items()}
        if large:
            for k, v in LARGE_SIZES.items():
                out[k] = sorted(set(out.get(k, [])) | set(v))
        return out
    out = {}
    for spec in specs:
        name, _, ns = spec.partition("=")
        if name not in BENCHMARKS or not ns:
            raise SystemExit(f"--sizes {spec!r}: expected NAME=N[,N...] with NAME one of "
                             f"{', '.join(BENCHMARKS)}")
        out[name] = [int(n) for n in ns.split(",")]
    return out


def _counts(r: dict[str, Any], cached: bool) -> str:
    """complete + blocked (+ pruned) = total, marked when cut by the time budget."""
    parts = f"{r['complete']:,} + {r['blocked']:,}"
    if cached:
        parts += f" + {r['pruned']:,}p"
    text = f"{parts} = {r['total']:,}"
    return text if r["exhaustive"] else f"≥ {text} (cut)"


def _pub(p: dict[str, Any] | None, refs: dict[str, int]) -> str:
    """A published count with its footnote number, or n/a."""
    if p is None:
        return "n/a"
    ref = refs.setdefault(p["source"], len(refs) + 1)
    text = f"{p['complete']:,}"
    if p["blocked"] is not None:
        text += f" + {p['blocked']:,}"
    return f"{text} [{ref}]"


def print_table(rows: list[dict[str, Any]], seconds: float) -> None:
    """The rich table and its numbered sources."""
    table = Table(title="Classic DPOR benchmarks: pfnlab source-DPOR uncached and cached, "
                        "and optimal DPOR (complete + sleep-set blocked [+ pruned] = total "
                        "executions) against the published counts")
    for col in ("benchmark", "size", "uncached", "s", "cached", "s", "wakeup trees", "s",
                "optimal", "source-DPOR"):
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    refs: dict[str, int] = {}
    for r in rows:
        u, c, w = r["uncached"], r["cached"], r["wakeup_trees"]
        table.add_row(r["benchmark"], str(r["size"]), _counts(u, False),
                      f"{u['seconds']:.1f}s", _counts(c, True), f"{c['seconds']:.1f}s",
                      _counts(w, False), f"{w['seconds']:.1f}s",
                      _pub(r["optimal"], refs), _pub(r["source_dpor"], refs))
    console = Console(width=160)
    console.print(table)
    console.print(f"Each run capped at {seconds:g} s; 'p': pruned at a cached state. "
                  "Sizes: " + "; ".join(f"{k}: {v}" for k, v in SIZE_MEANS.items()) + ".")
    console.print("optimal: Mazurkiewicz traces as counted by an optimal explorer; "
                  "source-DPOR: complete + sleep-set blocked; n/a: no published number "
                  "found for that size.")
    for source, n in refs.items():
        console.print(f"[{n}] {source}", highlight=False)


def main() -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", action="append", default=[], metavar="NAME=N,N",
                    help="run only these benchmarks at these sizes (repeatable; "
                         f"names: {', '.join(BENCHMARKS)})")
    ap.add_argument("--large", action="store_true",
                    help="add the literature's large sizes to the defaults (each search "
                         "still capped by --seconds: several are cut at the default)")
    ap.add_argument("--seconds", type=float, default=120.0,
                    help="time cap of each search (default 120); a capped run is a lower "
                         "bound")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "dpor_suite.json"))
    args = ap.parse_args()
    sizes = parse_sizes(args.sizes, args.large)
    t0 = time.perf_counter()
    rows = run(sizes, args.seconds)
    wall = time.perf_counter() - t0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "cpu": platform.processor(),
                    "system": platform.platform()},
        "options": {"sizes": sizes, "seconds": args.seconds, "search": "explore_dpor, "
                    "stop_first=False, cache off and on; explore_optimal (wakeup_trees)"},
        "wall_seconds": round(wall, 1),
        "results": rows,
    }, indent=2) + "\n")
    print_table(rows, args.seconds)
    print(f"total {wall:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()
