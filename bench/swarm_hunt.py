"""How fast a swarm finds v5.3's hang at a size no exhaustive search finishes, and whether
DPOR finds it at all within a time budget (docs/performance.md, "Swarm").

Run from the repository root::

    python bench/swarm_hunt.py                        # 4 vCPUs x 4 pages, 8 members, 2 jobs
    python bench/swarm_hunt.py --dpor-seconds 0       # the swarm only

For each per-member execution budget (``--executions``, several), a swarm of ``--members``
members from each of ``--seeds`` seeds runs on ``--jobs`` processes, and a line says how
many of its members showed the hang (teardown-terminates), how many executions they ran,
and the seconds of the search alone and with the findings minimised. Then DPOR runs for
``--dpor-seconds`` in one process and on ``--jobs`` workers, and a line each says whether
it found the hang.
"""

from __future__ import annotations

import argparse
import os
import time

from pfnlab import pipeline
from pfnlab.explore.search import Budget
from pfnlab.explore.search.parallel import backend
from pfnlab.explore.search.swarm import Swarm, SwarmResult, plan

HANG = "hang:teardown-terminates"


def main() -> None:
    """Run the measurements and print one line each."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vcpus", type=int, default=4)
    ap.add_argument("--pages", type=int, default=4)
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--executions", type=int, nargs="+", default=[1, 2, 5, 10, 50])
    ap.add_argument("--dpor-seconds", type=float, default=60.0)
    a = ap.parse_args()
    sizes = {"vcpus": a.vcpus, "pages": a.pages}
    print(f"v5.3 / devdax-unbind at {a.vcpus} vCPUs x {a.pages} pages; {a.members} members "
          f"on {a.jobs} processes; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    for e in a.executions:
        for seed in range(1, a.seeds + 1):
            for minimal in (False, True):
                t = time.perf_counter()
                res = pipeline.check("v5.3", "devdax-unbind", pipeline.Search(
                    strategy=Swarm(plan(a.members, seed), seed, a.jobs, e), minimal=minimal),
                    sizes=sizes).result
                took = time.perf_counter() - t
                assert isinstance(res, SwarmResult)
                if not minimal:
                    found = sum(1 for m in res.members if HANG in m.findings)
                    line = (f"  {e:>3} executions/member, seed {seed}: hang shown by {found} "
                            f"of {a.members} members, {res.stats.executions} executions, "
                            f"search {took:.2f} s")
                else:
                    hang = res.finding("teardown-terminates")
                    steps = f", minimal trace {hang.steps} steps" if hang else ""
                    print(f"{line}; with minimising {took:.2f} s{steps}")
    for jobs in sorted({1, a.jobs}) if a.dpor_seconds > 0 else ():
        t = time.perf_counter()
        res = pipeline.check("v5.3", "devdax-unbind", pipeline.Search(
            budget=Budget(seconds=a.dpor_seconds), minimal=False,
            backend=backend(jobs) if jobs > 1 else None), sizes=sizes).result
        found = [f.prop for f in res.findings]
        print(f"  dpor for {a.dpor_seconds:g} s on {jobs} process{'es' if jobs > 1 else ''}: "
              f"findings {found}; {res.stats.executions:,} executions, "
              f"{res.stats.states:,} states, {time.perf_counter() - t:.1f} s; {res.coverage}")


if __name__ == "__main__":
    main()
