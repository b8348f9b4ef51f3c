"""Optimal DPOR against source-DPOR, trace by trace, on random single-access programs.

Run from the repository root::

    python bench/optimal_traces.py --programs 3000 --seed 1

Each program of ``tests/engine/single_access.py`` (two to four threads of reads, writes,
atomic increments and exchanges, assertions, an invariant and a goal) is searched by
source-DPOR without caching and by optimal DPOR (``search/optimal.py``), every finding
collected; the sets of Mazurkiewicz traces of their complete executions
(``tests/engine/traces.py``) must be equal. Where optimal DPOR ran its wakeup trees (no
finding ended an execution) it must run no sleep-set-blocked execution and exactly one
execution per trace. Every tenth program also goes through the differential oracle against
brute force. Prints the first disagreement, with its spec, or ``N programs, 0
disagreements`` and how many traces were compared.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pfnlab.explore.search.optimal import explore_optimal  # noqa: E402
from tests.engine.oracle import differential  # noqa: E402
from tests.engine.single_access import draw, program  # noqa: E402
from tests.engine.traces import traces  # noqa: E402


def problems(seed: int, index: int) -> tuple[list[str], int, bool]:
    """What is wrong with program ``index`` of ``seed``, its traces, and whether the
    wakeup trees ran."""
    spec = draw(random.Random(f"{seed}:{index}"))
    out: list[str] = []
    source = traces(program(spec), optimal=False, rounds=None)
    optimal = traces(program(spec), optimal=True, rounds=None)
    if optimal != source:
        out.append(f"{len(source - optimal)} of {len(source)} traces missed, "
                   f"{len(optimal - source)} not source-DPOR's")
    res = explore_optimal(program(spec), stop_first=False)
    trees = "wakeup trees" in res.coverage
    st = res.stats
    if trees and (st.sleep_blocked or st.executions != len(source)):
        out.append(f"{st.executions} executions ({st.sleep_blocked} blocked) for "
                   f"{len(source)} traces")
    if index % 10 == 0:
        out += differential(program(spec)).problems
    return [f"{p}: {spec}" for p in out], len(source), trees


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    start = time.perf_counter()
    compared = trees = 0
    for i in range(args.programs):
        bad, n, ran = problems(args.seed, i)
        if bad:
            print(f"program #{i} (seed {args.seed}) DISAGREES:")
            for b in bad:
                print("  " + b)
            return 1
        compared += n
        trees += ran
    print(f"{args.programs} programs, 0 disagreements ({compared:,} traces compared; "
          f"wakeup trees ran on {trees}, source-DPOR on the rest: a finding ended an "
          f"execution; {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
