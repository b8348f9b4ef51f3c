"""Benchmark: one check on a Ray cluster against one process, in wall time and in CPU.

On a machine shared with other jobs the wall time of a parallel run says more about the
other jobs than about the search; the CPU seconds it took do not. This runs ``v5.4 /
devdax-unbind`` at the size given sequentially and on the cluster at ``--address`` (its
actors must run on this machine: their CPU is read from /proc when the search ends), and
prints, for each, the wall time, the executions, and the CPU seconds: the process's for
the sequential search; the coordinator's, the relay's and every actor's for Ray; and, for
Ray, the entries each actor's tables held at the end, with the table partitioned among the
actors (the default) and whole in every actor (``--table both``, the default, runs both).

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
    """Ray actors whose CPU seconds are read before they stop, and whose exchange
    counters (entries held, sent, received) are kept from their last results."""

    def __init__(self, address: str, partitioned: bool) -> None:
        super().__init__(None, address, partitioned=partitioned)
        self.cpu: dict[str, float] = {}
        self.latest: dict[int, dict[str, int]] = {}

    def next_result(self, timeout: float | None = None) -> Any:
        res = super().next_result(timeout)
        if res is not None:
            self.latest[res.worker] = res.exchange
        return res

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
    ap.add_argument("--table", choices=("both", "partitioned", "whole"), default="both",
                    help="the actors' table of visited states")
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
    for partitioned in {"both": (True, False), "partitioned": (True,),
                        "whole": (False,)}[args.table]:
        backend = Measured(args.address, partitioned)
        t, c = time.perf_counter(), time.process_time()
        par = explore_parallel(program(), Budget(), backend)
        cpu = {"coordinator": time.process_time() - c, **backend.cpu}
        table = "partitioned" if partitioned else "whole"
        rows[f"Ray, {backend.workers} actors, {table} table"] = {
            "seconds": round(time.perf_counter() - t, 1),
            "executions": par.stats.executions, "states": par.stats.states,
            "held": sorted(x.get("held", 0) for x in backend.latest.values()),
            "cpu": {k: round(x, 1) for k, x in cpu.items()}}
        assert [f.key for f in par.findings] == [f.key for f in seq.findings]
    for name, row in rows.items():
        total = sum(row["cpu"].values())  # type: ignore[attr-defined]
        held = f", entries held per actor {row['held']}" if "held" in row else ""
        print(f"{name}: {row['seconds']} s, {row['executions']} executions{held}, "
              f"{total:.1f} CPU s {row['cpu']}")
    out = ROOT / "bench" / "results" / "ray_cluster.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
