"""The long differential run of the parallel search: brute force against parallel DPOR on
two simulated workers, with other workers' states arriving while tasks run.

Run from the repository root::

    python bench/parallel_differential.py --programs 4000 --seed 1

Program ``i`` of seed ``s`` is drawn by ``random.Random(f"{s}:{i}")`` with the generator of
the differential tests (``tests/engine/programs.py``: ``wide_spec``). Each is searched
in parallel at frontier depths 1, 2 and 3 on ``InProcess(2, seed, late=True)``: tasks run
in a seeded random order on two simulated workers with their own tables, and part of the
states the other worker completed arrive only at random completions inside a task, as
local worker processes receive them (explore/search/exchange.py), so a state can be on a
task's stack when another worker's entry for it arrives. Final states, violations, goals
and replays are compared with brute force (``tests/engine/test_parallel.py: _agree``).
The last line counts the programs, the disagreements, the entries that arrived for a state
on the receiving task's stack (the case the run is for), the stack nodes cut because of
them (task_search.TaskDpor._cut) and the coordinator's missed queue entries (must be 0).
Exit status 1 on any disagreement.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pfnlab.explore.search import Budget  # noqa: E402
from pfnlab.explore.search.brute import explore_brute  # noqa: E402
from pfnlab.explore.search.parallel import (  # noqa: E402
    MISSED,
    InProcess,
    explore_parallel,
)
from pfnlab.explore.search.parallel.task_search import TaskDpor  # noqa: E402
from pfnlab.explore.search.visited import VisitedTable  # noqa: E402
from tests.engine.oracle import typed_final_states  # noqa: E402
from tests.engine.programs import WIDE, wide_program, wide_spec  # noqa: E402
from tests.engine.test_parallel import _agree  # noqa: E402

ON_STACK = [0]
CUTS = [0]
_CUT = TaskDpor._cut


def _counting_cut(search: TaskDpor, d: int) -> None:
    CUTS[0] += 1
    _CUT(search, d)


_MERGE = VisitedTable.merge


def _counting_merge(table: VisitedTable, entries: Any) -> None:
    entries = list(entries)
    for fp, _sleep, _summary in entries:
        e = table.lookup(fp)
        if e is not None and e.summary is None:
            ON_STACK[0] += 1
    _MERGE(table, entries)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    VisitedTable.merge = _counting_merge  # type: ignore[method-assign]
    TaskDpor._cut = _counting_cut  # type: ignore[method-assign]
    bad = 0
    for i in range(args.programs):
        program = wide_program(wide_spec(random.Random(f"{args.seed}:{i}").randint, WIDE))
        with typed_final_states():
            brute = explore_brute(program, stop_first=False, collect_final_states=True)
            for depth in (1, 2, 3):
                seed = hash((args.seed, i, depth)) & 0xFFFF
                par = explore_parallel(program, Budget(), InProcess(2, seed, late=True),
                                       stop_first=False, collect_final_states=True,
                                       depth=depth)
                problems = _agree(program, par, brute)
                if problems:
                    bad += 1
                    print(f"program {i} (seed {args.seed}), depth {depth}, order seed "
                          f"{seed}: {problems}", flush=True)
    print(f"{args.programs} programs, {bad} disagreements, {ON_STACK[0]} entries arrived "
          f"for a state on the task's stack ({CUTS[0]} stack nodes cut there), {MISSED[0]} "
          "missed queue entries")
    return 1 if bad or MISSED[0] else 0


if __name__ == "__main__":
    sys.exit(main())
