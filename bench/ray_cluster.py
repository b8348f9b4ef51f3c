"""Benchmark: one check on a Ray cluster against one process, in wall time and in CPU.

On a machine shared with other jobs the wall time of a parallel run says more about the
other jobs than about the search; the CPU seconds it took do not. This runs ``v5.4 /
devdax-unbind`` at the size given sequentially and on the cluster at ``--address`` (its
actors must run on this machine: their CPU is read from /proc when the search ends), and
prints, for each, the wall time, the executions, and the CPU seconds: the process's for
the sequential search; the coordinator's, the relay's and every actor's for Ray.

    RAY_AUTH_MODE=token python bench/ray_cluster.py --address HEAD:PORT --size 3x2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pfnlab import SCENARIOS, VARIANTS  # noqa: E402
from pfnlab.explore.search import Budget  # noqa: E402
from pfnlab.explore.search.dpor import explore_dpor  # noqa: E402
from pfnlab.explore.search.parallel import RayWorkers, explore_parallel  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Measured(RayWorkers):
    """Ray actors whose CPU seconds are read before they stop."""

    def __init__(self, address: str) -> None:
        super().__init__(None, address)
        self.cpu: dict[str, float] = {}

    def stop(self) -> None:
        for a in self.actors.values():
            self.cpu[f"actor {a.me}"] = cpu_seconds(a.pid)
        if self.relay is not None:
            self.cpu[f"relay {len(self.cpu)}"] = cpu_seconds(
                self.ray.get(self.relay.ready.remote()))
        super().stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--address", required=True)
    ap.add_argument("--size", default="3x2", help="VxP (vCPUs x pages)")
    args = ap.parse_args()
    v, p = (int(x) for x in args.size.split("x"))

    def program() -> Any:
        return SCENARIOS["devdax-unbind"].program(VARIANTS["v5.4"], vcpus=v, pages=p)

    rows = {}
    t, c = time.perf_counter(), time.process_time()
    seq = explore_dpor(program())
    rows["one process"] = {"seconds": round(time.perf_counter() - t, 1),
                           "executions": seq.stats.executions,
                           "cpu": {"process": round(time.process_time() - c, 1)}}
    backend = Measured(args.address)
    t, c = time.perf_counter(), time.process_time()
    par = explore_parallel(program(), Budget(), backend)
    cpu = {"coordinator": time.process_time() - c, **backend.cpu}
    rows[f"Ray, {backend.workers} actors"] = {
        "seconds": round(time.perf_counter() - t, 1), "executions": par.stats.executions,
        "cpu": {k: round(x, 1) for k, x in cpu.items()}}
    assert [f.key for f in par.findings] == [f.key for f in seq.findings]
    for name, row in rows.items():
        total = sum(row["cpu"].values())  # type: ignore[attr-defined]
        print(f"{name}: {row['seconds']} s, {row['executions']} executions, "
              f"{total:.1f} CPU s {row['cpu']}")
    out = ROOT / "bench" / "results" / "ray_cluster.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
