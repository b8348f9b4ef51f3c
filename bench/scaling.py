"""Benchmark: how one search scales with its workers, and what each worker's table costs.

For each number of workers (default 1, 2, 4, 8) and each table of visited states
(``partitioned``: each fingerprint owned by one worker, parallel/partitioned.py;
``replicated``: every worker keeps every completed entry, parallel/exchange.py), runs
``v5.4 devdax-unbind`` at one size (default 3 x 1) on local worker processes, each run in a
fresh process, and records: wall seconds, executions and states, executions per second,
each worker's peak memory (VmHWM) and CPU seconds, the coordinator's CPU seconds, and what
the workers exchanged (entries sent and received, states asked about and answered, stack
nodes cut because another worker completed their state). A one-process sequential run is
the baseline.

From the measured costs it then projects 64 workers (the model is printed with the
table): a worker's CPU is its share of the executions at the measured CPU per execution,
plus what it receives at the measured cost per entry received; the coordinator's CPU
does not shrink with the workers. It says where scaling stops and why.

    python bench/scaling.py                         # about 10 minutes on 2 cores
    python bench/scaling.py --size 3x2 --workers 1,2,4

Results go to bench/results/scaling.json. Wall times with more workers than cores measure
the machine, not the search: the CPU columns are what the projection uses.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402


def _proc(pid: int) -> tuple[int, float]:
    """Peak resident memory (MB) and CPU seconds of process ``pid`` (Linux /proc)."""
    mb, cpu = 0, 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                mb = int(line.split()[1]) // 1024
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        pass
    return mb, cpu


def one(size: str, workers: int, table: str) -> dict[str, Any]:
    """One run in this process (``workers`` 0: the sequential search)."""
    from pfnlab.catalog import get_variant, load_builtins, scenario
    from pfnlab.explore.search import Budget
    from pfnlab.explore.search.dpor.search import SourceDpor
    from pfnlab.explore.search.parallel import LocalProcesses, explore_parallel

    load_builtins()
    vcpus, pages = (int(x) for x in size.split("x"))
    program = scenario("devdax-unbind").program(get_variant("v5.4"), vcpus=vcpus,
                                                 pages=pages)
    exchange: dict[str, int] = {}
    per_worker: list[tuple[int, float]] = []

    class Measured(LocalProcesses):
        """Local processes whose workers' exchange counters and memory are kept."""

        def next_result(self, timeout: float | None = None) -> Any:
            res = super().next_result(timeout)
            if res is not None:
                latest[res.worker] = res.exchange
            return res

        def stop(self) -> None:  # (a round that restarts has its own workers: the last)
            per_worker[:] = [_proc(p.pid) for pool in self.pools
                             for p in (getattr(pool, "_processes", None) or {}).values()]
            super().stop()

    latest: dict[str, dict[str, int]] = {}
    before = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    if workers == 0:
        res = SourceDpor(program, Budget(), stop_first=False).run()
        mb, cpu = _proc(os.getpid())
        per_worker.append((mb, cpu))
    else:
        res = explore_parallel(program, Budget(),
                               Measured(workers, partitioned=table == "partitioned"),
                               stop_first=False)
    wall = time.perf_counter() - t
    for counters in latest.values():  # each worker's counters are cumulative
        for k, v in counters.items():
            if k != "cuts":
                exchange[k] = exchange.get(k, 0) + v
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "size": size, "workers": workers, "table": table if workers else "one process",
        "seconds": round(wall, 2), "executions": res.stats.executions,
        "states": res.stats.states, "exhaustive": res.exhaustive,
        "executions_per_second": round(res.stats.executions / wall, 1),
        "worker_mb": [m for m, _c in per_worker], "worker_cpu": [round(c, 1)
                                                               for _m, c in per_worker],
        "coordinator_cpu": round(after.ru_utime + after.ru_stime - before.ru_utime
                                 - before.ru_stime, 1) if workers else 0.0,
        "exchange": exchange,
    }


def project(rows: list[dict[str, Any]], n: int = 64) -> list[str]:
    """The projection to ``n`` workers from the measured costs (module docstring)."""
    seq = next((r for r in rows if r["workers"] == 0), None)
    out = []
    if seq is None:
        return out
    cpu_seq = sum(seq["worker_cpu"])
    for table in ("partitioned", "replicated"):
        runs = [r for r in rows if r["table"] == table and r["workers"] >= 2]
        if not runs:
            continue
        big = max(runs, key=lambda r: r["workers"])
        w = big["workers"]
        work = sum(big["worker_cpu"])  # all workers' CPU at w workers
        dup = big["executions"] / max(1, seq["executions"])
        received = big["exchange"].get("received", 0) / w  # per worker
        # CPU per entry received: the excess of the workers' CPU over the sequential run's,
        # scaled by the executions they ran, spread over what they received
        excess = max(0.0, work - cpu_seq * dup)
        per_entry = excess / max(1, big["exchange"].get("received", 0))
        coord = big["coordinator_cpu"]
        # at n workers: executions as at w (duplication measured), split n ways; entries
        # received per worker: replicated, every other worker's (the total times
        # (n-1)/n, where at w it was times (w-1)/w); partitioned, its share of owned
        # entries and answers (as at w, times w/n)
        recv_n = received * (((n - 1) / n) / ((w - 1) / w) if table == "replicated"
                             else w / n)
        worker_n = cpu_seq * dup / n + recv_n * per_entry
        speedup = cpu_seq / max(worker_n, coord)
        bound = "the coordinator" if coord >= worker_n else (
            "receiving entries" if recv_n * per_entry > cpu_seq * dup / n else "the workers")
        out.append(f"{table}: at {n} workers a worker would spend {worker_n:.1f} CPU s "
                   f"({cpu_seq * dup / n:.1f} exploring, {recv_n * per_entry:.1f} taking in "
                   f"{recv_n:,.0f} entries at {per_entry * 1e6:.0f} us each), the coordinator "
                   f"{coord:.1f} s: about {speedup:.1f}x the one-process run, bounded by "
                   f"{bound}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="3x1", help="VCPUSxPAGES (default 3x1)")
    ap.add_argument("--workers", default="1,2,4,8")
    ap.add_argument("--tables", default="partitioned,replicated")
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # a single run, as JSON
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "scaling.json"))
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.one[2])))
        return 0
    runs = [(0, "one process")] + [(int(w), t) for w in args.workers.split(",")
                                   for t in args.tables.split(",")]
    rows = []
    for w, t in runs:
        out = subprocess.run([sys.executable, __file__, "--one", args.size, str(w), t],
                             capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            return 1
        rows.append(json.loads(out.stdout.splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    table = Table(title=f"v5.4 devdax-unbind {args.size}: one search on N local workers")
    for col in ("workers", "table", "s", "executions", "exec/s", "worker MB",
                "worker CPU s", "coord. CPU s", "received", "asked / answered"):
        table.add_column(col, justify="right")
    for r in rows:
        ex = r["exchange"]
        table.add_row(str(r["workers"] or 1), r["table"], f"{r['seconds']}",
                      f"{r['executions']:,}", f"{r['executions_per_second']:,}",
                      "/".join(map(str, r["worker_mb"])),
                      "/".join(map(str, r["worker_cpu"])), f"{r['coordinator_cpu']}",
                      f"{ex.get('received', 0):,}",
                      f"{ex.get('asked', 0):,} / {ex.get('answered', 0):,}" if "asked" in ex
                      else "")
    console = Console(width=160)
    console.print(table)
    notes = project(rows)
    for line in notes:
        console.print(line)
    Path(args.out).write_text(json.dumps({"rows": rows, "projection": notes}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
