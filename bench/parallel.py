"""Benchmark: one DPOR search split among workers (``pfnlab check --jobs N``).

Runs ``pfnlab check v5.4 devdax-unbind`` at the sizes given, sequentially (``--jobs 1``)
and with 2 (or ``--workers``) local worker processes, each as the command a user types, in
its own process, and prints time, states, executions and the speedup; the table is also
written to bench/results/parallel.json. With ``--ray`` the parallel runs use a local Ray
instance instead of local processes, with ``--address HOST:PORT`` a running cluster (one
worker per CPU of it; a cluster with token authentication wants ``RAY_AUTH_MODE=token``
in the environment).

    python bench/parallel.py --sizes 2x2,3x3            # about 3 minutes on 2 cores
    python bench/parallel.py --sizes 3x4,4x2            # the largest sizes that finish in
                                                        # 10 minutes (--seconds 600) or not
    python bench/parallel.py --sizes 3x2 --address HEAD:PORT   # a Ray cluster
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent


def run(vcpus: int, pages: int, jobs: int, ray: str | None, cap: float) -> dict[str, object]:
    """One ``pfnlab check`` run: seconds, states, executions, verdict line (a run cut at
    ``cap`` seconds by ``--seconds`` is "not finished", its states those it covered)."""
    cmd = [sys.executable, "-m", "pfnlab", "check", "v5.4", "devdax-unbind",
           "--size", f"vcpus={vcpus}", "--size", f"pages={pages}", "--seconds", str(cap)]
    if ray is not None:  # a cluster's CPUs, or a local instance's (--jobs)
        cmd += ["--ray", ray] if ray != "local" else ["--ray", "local", "--jobs", str(jobs)]
    else:
        cmd += ["--jobs", str(jobs)]
    t = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=cap + 120)
    except subprocess.TimeoutExpired:
        return {"seconds": cap, "states": None, "executions": None, "verdict": "not finished"}
    secs = time.perf_counter() - t
    text = " ".join(out.stdout.split())
    states = re.search(r"([\d,]+) states \(fingerprint", text)
    execs = re.search(r"([\d,]+) executions, [\d,]+ states", text)
    verdict = out.stdout.splitlines()[0] if out.stdout else out.stderr[-200:]
    if "budget reached" in text:
        verdict = f"not finished in {cap:g} s"
    return {"seconds": round(secs, 2),
            "states": int(states.group(1).replace(",", "")) if states else None,
            "executions": int(execs.group(1).replace(",", "")) if execs else None,
            "verdict": verdict, "exit": out.returncode}


def _secs(r: dict[str, object]) -> str:
    return (f"not finished in {r['seconds']}" if str(r["verdict"]).startswith("not finished")
            else f"{r['seconds']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2x2,3x3", help="VxP,... (vCPUs x pages)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ray", action="store_true", help="parallel runs on a local Ray instance")
    ap.add_argument("--address", help="parallel runs on the Ray cluster at this address")
    ap.add_argument("--seconds", type=float, default=600,
                    help="cap per run: past it the check stops and reports what it covered")
    args = ap.parse_args()
    ray = args.address or ("local" if args.ray else None)
    rows = []
    for size in args.sizes.split(","):
        v, p = (int(x) for x in size.split("x"))
        one = run(v, p, 1, None, args.seconds)
        many = run(v, p, args.workers, ray, args.seconds)
        done = all(r["states"] is not None and not str(r["verdict"]).startswith("not finished")
                   for r in (one, many))
        speed = one["seconds"] / many["seconds"] if done else None  # type: ignore[operator]
        rows.append({"size": size, "sequential": one, "parallel": many,
                     "workers": args.workers, "ray": ray, "speedup": speed})
    t = Table(title=f"pfnlab check v5.4 devdax-unbind: 1 vs {args.workers} workers "
              f"({'local processes' if ray is None else 'Ray ' + ray})")
    for col in ("size", "1: s", "1: states", "1: executions", f"{args.workers}: s",
                f"{args.workers}: states", f"{args.workers}: executions", "speedup"):
        t.add_column(col, justify="right")
    for r in rows:
        a, b = r["sequential"], r["parallel"]
        t.add_row(r["size"], _secs(a), f"{a['states']}", f"{a['executions']}",
                  _secs(b), f"{b['states']}", f"{b['executions']}",
                  "-" if r["speedup"] is None else f"{r['speedup']:.2f}x")
    Console().print(t)
    out = ROOT / "bench" / "results" / "parallel.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
