"""Benchmark: pfnlab against the explicit-state C checker SPIN on `devdax-unbind`.

Run from the repository root::

    python bench/spin_compare.py                          # sizes 1x1,2x2,3x3, cap 120 s
    python bench/spin_compare.py --sizes 1x1,2x1 --seconds 60

For every size VxP (V vCPUs, P pages) and both designs (v5.3, which hangs, and v5.4, which
holds) it runs the two checkers on the same question and prints one table, also written to
bench/results/spin_compare.json.

pfnlab: the command a user would type, ``pfnlab check DESIGN devdax-unbind --size vcpus=V
--size pages=P --jobs 1`` (default search: source-set DPOR, every finding; one process like
SPIN, unless ``--jobs N`` or ``--jobs default``, the machine's cores as the command's
default), in its own process with ``--output`` for the JSON report. Its wall time covers
the whole command (interpreter start, model build, search, report). A run that exceeds the
cap is killed and reported as "not finished in N s", never as a pass.

SPIN (only when Debian's ``spin`` package and gcc are installed): the reference Promela model
../shared/reference/spin/devdax.pml with VARIANT=0 (v5.3) or 1 (v5.4), copied to a temporary
directory; ``spin -a`` + ``gcc -O0 -DSAFETY`` + ``./pan -m1000000 -wN -c0`` are timed as one
wall-clock number (the same cap applies). ``-c0`` makes pan explore the whole space also when
it finds errors, so both checkers are exhaustive and v5.3's state count is the full one;
``errors`` is then the number of hang states (invalid end states = the unbind thread stuck in
``wait_for_completion(&pgmap->done)``).

Counting conventions (see ../shared/reference/spin/README.md): one SPIN step is one
kernel-level action (a gup, a lock acquire with the bookkeeping it protects, one SPTE install
or zap, one put_page, ...), dead locals are reset, and SPIN's partial-order reduction removes
nothing on this model, so "states, stored" is the unreduced reachable state count of that step
graph (96 at 1x1 and 65,138 at 3x3 for v5.4). pfnlab's steps are finer (every shared read,
write and lock operation), so its state counts are not the same unit; without state caching
it counts no states at all ("-") and its executions column is the number of DPOR
executions. The time ratio is pfnlab seconds / SPIN seconds (">" when pfnlab was cut off).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
PML = ROOT.parent / "shared" / "reference" / "spin" / "devdax.pml"
DESIGNS = {"v5.3": 0, "v5.4": 1}  # pfnlab variant -> devdax.pml VARIANT
SCENARIO = "devdax-unbind"


@dataclass
class Cell:
    """The outcome of one checker on one (size, design)."""

    verdict: str
    seconds: float
    exhaustive: bool = False
    finished: bool = True
    states: int | None = None
    executions: int | None = None
    errors: int | None = None  # SPIN only: pan's error count (hang states with -c0)


def not_finished(cap: float) -> Cell:
    """A cell whose run was killed at the time cap."""
    return Cell(verdict=f"not finished in {cap:g} s", seconds=cap, finished=False)


def run_pfnlab(design: str, vcpus: int, pages: int, cap: float, jobs: int | None = 1) -> Cell:
    """Run ``pfnlab check`` in its own process (``--jobs jobs``; None: the command's
    default, the machine's cores); kill it at ``cap`` seconds."""
    exe = shutil.which("pfnlab", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "pfnlab"]
    with tempfile.TemporaryDirectory(prefix="pfnlab-bench-") as tmp:
        report = Path(tmp) / "report.json"
        cmd += ["check", design, SCENARIO, "--size", f"vcpus={vcpus}",
                "--size", f"pages={pages}", "--output", str(report)]
        if jobs is not None:
            cmd += ["--jobs", str(jobs)]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=cap)
        except subprocess.TimeoutExpired:
            return not_finished(cap)
        wall = time.perf_counter() - t0
        if not report.exists():
            last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
            return Cell(verdict=f"error (exit {proc.returncode}): {last[:80]}", seconds=wall)
        data = json.loads(report.read_text())
    stats = data["stats"]
    found = sorted({f"{f['kind']} {f['property']}" for f in data["findings"]})
    verdict = ", ".join(found) if found else "holds"
    if not data["exhaustive"]:
        verdict += " (not exhaustive)"
    return Cell(verdict=verdict, seconds=wall, exhaustive=data["exhaustive"],
                states=stats["states"] if stats.get("caching") else None,
                executions=stats["executions"])


def hash_bits(vcpus: int, pages: int) -> int:
    """pan's -w: 2^20 hash slots up to 3x3 (65 k states), 2^24 to 4x4 (2.4 M), else 2^26."""
    n = vcpus * pages
    return 20 if n <= 9 else 24 if n <= 16 else 26


def run_spin(variant: int, vcpus: int, pages: int, cap: float, memlim: int) -> Cell:
    """``spin -a`` + ``gcc`` + ``./pan`` on devdax.pml in a temporary directory, timed as one."""
    with tempfile.TemporaryDirectory(prefix="spin-bench-") as tmp:
        shutil.copy(PML, tmp)
        steps = [
            ["spin", f"-DVARIANT={variant}", f"-DNVCPU={vcpus}", f"-DNPAGES={pages}",
             "-a", PML.name],
            ["gcc", "-O0", "-w", "-DSAFETY", f"-DMEMLIM={memlim}", "-o", "pan", "pan.c"],
            ["./pan", "-m1000000", f"-w{hash_bits(vcpus, pages)}", "-c0"],
        ]
        t0 = time.perf_counter()
        for cmd in steps:
            left = cap - (time.perf_counter() - t0)
            try:
                proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True,
                                      timeout=max(left, 0.01))
            except subprocess.TimeoutExpired:
                return not_finished(cap)
            if proc.returncode != 0:
                msg = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:]
                return Cell(verdict=f"error in {cmd[0]}: {''.join(msg)[:80]}",
                            seconds=time.perf_counter() - t0)
        wall = time.perf_counter() - t0
    out = proc.stdout
    states = int(re.search(r"(\d+) states, stored", out)[1])  # type: ignore[index]
    errors = int(re.search(r"errors: (\d+)", out)[1])  # type: ignore[index]
    complete = "Search not completed" not in out and "max search depth too small" not in out
    first = re.search(r"^pan:\d+: (.+?)(?: \(at depth \d+\))?$", out, re.M)
    if errors:
        kind = first[1] if first else "error"
        verdict = "hang (invalid end state)" if kind == "invalid end state" else kind
        verdict += f" x{errors}"
    elif "reached -DMEMLIM bound" in out:
        verdict = f"out of memory ({memlim} MB)"
    else:
        verdict = "holds"
    if not complete:
        verdict += " (not exhaustive)"
    return Cell(verdict=verdict, seconds=wall, exhaustive=complete, states=states,
                errors=errors)


def ratio(pfn: Cell, spin: Cell | None) -> str:
    """pfnlab seconds / SPIN seconds, as a lower bound when pfnlab was cut off."""
    if spin is None or not spin.exhaustive or (pfn.finished and not pfn.exhaustive):
        return ""
    return (">" if not pfn.finished else "") + f"{pfn.seconds / spin.seconds:,.1f}x"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """"1x1,2x2" -> [(1, 1), (2, 2)]."""
    out = []
    for item in text.split(","):
        v, p = item.strip().lower().split("x")
        out.append((int(v), int(p)))
    return out


def main() -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1x1,2x2,3x3",
                    help="comma-separated VCPUSxPAGES (default 1x1,2x2,3x3)")
    ap.add_argument("--seconds", type=float, default=120.0,
                    help="time cap of each run, either checker (default 120)")
    ap.add_argument("--spin-memlim", type=int, default=8192,
                    help="pan's memory limit in MB (-DMEMLIM, default 8192)")
    ap.add_argument("--jobs", default="1",
                    help="pfnlab's --jobs: 1 (default: one process, as SPIN runs on one core, "
                    "and the state counts are reproducible) or N, or 'default' (the "
                    "command's own default: the machine's cores)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "spin_compare.json"))
    args = ap.parse_args()

    missing = [tool for tool in ("spin", "gcc") if shutil.which(tool) is None]
    if missing or not PML.exists():
        why = f"{' and '.join(missing)} not found" if missing else f"{PML} missing"
        print(f"{why}: SPIN columns skipped "
              "(install with: sudo apt-get install spin gcc)", file=sys.stderr)
    with_spin = not missing and PML.exists()

    rows: list[dict[str, Any]] = []
    for vcpus, pages in parse_sizes(args.sizes):
        for design, variant in DESIGNS.items():
            size = f"{vcpus}x{pages}"
            print(f"{size} {design}: pfnlab ...", file=sys.stderr, flush=True)
            pfn = run_pfnlab(design, vcpus, pages, args.seconds,
                             None if args.jobs == "default" else int(args.jobs))
            spin = None
            if with_spin:
                print(f"{size} {design}: spin ...", file=sys.stderr, flush=True)
                spin = run_spin(variant, vcpus, pages, args.seconds, args.spin_memlim)
            rows.append({"size": size, "vcpus": vcpus, "pages": pages, "design": design,
                         "pfnlab": asdict(pfn), "spin": asdict(spin) if spin else None,
                         "ratio": ratio(pfn, spin)})

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "cpu": platform.processor(),
                    "system": platform.platform()},
        "scenario": SCENARIO, "cap_seconds": args.seconds,
        "spin": shutil.which("spin") if with_spin else None,
        "results": rows,
    }, indent=2))

    table = Table(title=f"{SCENARIO}: pfnlab vs SPIN (cap {args.seconds:g} s per run)")
    cols = ["size", "design", "pfnlab verdict", "pfnlab states", "pfnlab executions",
            "pfnlab s", "SPIN verdict", "SPIN states", "SPIN s", "ratio"]
    for col in cols:
        table.add_column(col, justify="left" if "verdict" in col or col in cols[:2]
                         else "right")

    def num(n: int | None) -> str:
        return "-" if n is None else f"{n:,}"

    for r in rows:
        p, s = r["pfnlab"], r["spin"]
        spin_cols = (["skipped", "", "", ""] if s is None else
                     [s["verdict"], num(s["states"]), f"{s['seconds']:.2f}", r["ratio"]])
        table.add_row(r["size"], r["design"], p["verdict"], num(p["states"]),
                      num(p["executions"]), f"{p['seconds']:.2f}", *spin_cols)
    Console(width=160).print(table)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
