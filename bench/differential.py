"""The long differential run: brute force against DPOR (cache on and off) and replay, on many
random programs.

Run from the repository root::

    python bench/differential.py --programs 20000 --seed 1          # all cores
    python bench/differential.py --programs 1 --seed 1 --start 4711  # program 4711 alone

Program ``i`` of seed ``s`` is drawn by ``random.Random(f"{s}:{i}")`` with the generator of
the project's differential test (``tests/engine/programs.py``: ``wide_spec``), so any program
can be re-created alone, and the run does not depend on the number of jobs. Programs may be
longer than in the CI test (``--interleavings``, default 5000 against 3000). Each program is
checked by ``tests/engine/oracle.py`` (same final states, violations and goals; executions
summed over DPOR's rounds and within brute force's per round; every finding replays).

The last line is ``N programs, 0 disagreements``; otherwise the first disagreeing program (in
program order) is shrunk greedily, printed as Python code with what disagrees, and the exit
status is 1.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engine.oracle import differential  # noqa: E402
from tests.engine.programs import (  # noqa: E402
    WIDE,
    Op,
    Shape,
    WideSpec,
    hint_spec,
    random_program,
    wide_program,
    wide_source,
    wide_spec,
)

#: programs of the long run may be longer than the CI test's (``WIDE.interleavings``)
LONG_INTERLEAVINGS = 5000


@dataclass
class Outcome:
    """What the oracle said about one program."""

    index: int
    problems: list[str]
    kinds: list[str]          # kinds of the violations brute force found
    rounds: int               # DPOR's visibility rounds (cache on)
    brute: int                # brute-force executions
    dpor: int                 # DPOR executions (cache on)


def spec_of(seed: int, index: int, shape: Shape) -> WideSpec:
    """Program ``index`` of ``seed``."""
    rng = random.Random(f"{seed}:{index}")
    return wide_spec(rng.randint, shape)


def problems_of(spec: WideSpec) -> list[str]:
    """The oracle's disagreements on ``spec`` (a crash is one)."""
    try:
        return differential(wide_program(spec)).problems
    except Exception:
        return ["crash:\n" + traceback.format_exc()]


def check(job: tuple[int, int, Shape]) -> Outcome:
    """Run the oracle on program ``index`` of ``seed`` (in a worker process)."""
    seed, index, shape = job
    spec = spec_of(seed, index, shape)
    try:
        v = differential(wide_program(spec))
    except Exception:
        return Outcome(index, ["crash:\n" + traceback.format_exc()], [], 0, 0, 0)
    kinds = sorted({k for k, _p, _m in v.brute.violations}) or ["none"]
    red = v.dpor[True]
    return Outcome(index, v.problems, kinds, red.stats.rounds, v.brute.stats.executions,
                   red.stats.executions)


# ------------------------------------------------------------------ shrinking
def _without(ops: tuple[Op, ...]) -> Iterator[tuple[Op, ...]]:
    """Every op sequence one simplification away from ``ops``."""
    for i, op in enumerate(ops):
        yield ops[:i] + ops[i + 1:]                     # drop the op
        if op[0] in ("cs", "if"):
            yield ops[:i] + op[2] + ops[i + 1:]         # keep its body only
            for body in _without(op[2]):
                if body:
                    yield (*ops[:i], (*op[:2], body), *ops[i + 1:])


def _smaller(spec: WideSpec) -> Iterator[WideSpec]:
    """Every spec one simplification away from ``spec``."""
    threads = spec.threads
    if len(threads) > 1:
        for t in range(len(threads)):
            yield replace(spec, threads=threads[:t] + threads[t + 1:])
    for t, ops in enumerate(threads):
        for new in _without(ops):
            yield replace(spec, threads=(*threads[:t], new, *threads[t + 1:]))
    for name in ("invariants", "goals", "finals"):
        checks: tuple[Any, ...] = getattr(spec, name)
        for k in range(len(checks)):
            yield replace(spec, **{name: checks[:k] + checks[k + 1:]})
    for name in ("invariants", "goals"):
        checks = getattr(spec, name)
        for k, ((conj, atoms), stable) in enumerate(checks):
            for j in range(len(atoms) if len(atoms) > 1 else 0):
                e = ((conj, atoms[:j] + atoms[j + 1:]), stable)
                yield replace(spec, **{name: (*checks[:k], e, *checks[k + 1:])})
    for i, c in enumerate(spec.inits):
        if c != 0 or type(c) is bool:
            yield replace(spec, inits=(*spec.inits[:i], 0, *spec.inits[i + 1:]))


def shrink(spec: WideSpec, bad: Callable[[WideSpec], bool]) -> WideSpec:
    """Greedily simplify ``spec`` while ``bad`` still holds."""
    progress = True
    while progress:
        progress = False
        for cand in _smaller(spec):
            if bad(cand):
                spec, progress = cand, True
                break
    return spec


# ------------------------------------------------------------------ driver
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=20_000, help="how many programs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="index of the first program")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--interleavings", type=int, default=LONG_INTERLEAVINGS,
                    help="bound on each program's interleavings (brute force's work); "
                    f"default {LONG_INTERLEAVINGS}, the CI test uses {WIDE.interleavings}")
    ap.add_argument("--no-plain", action="store_true", help="leave Plain fields out")
    ap.add_argument("--no-stable-invariants", action="store_true",
                    help="declare no invariant stable")
    ap.add_argument("--no-shrink", action="store_true", help="print the program as drawn")
    ap.add_argument("--hints", action="store_true",
                    help="the hint-mutation generator instead (tests/engine/programs.py "
                    "hint_spec: programs around the one whose reversal must be followed)")
    ap.add_argument("--locks", action="store_true",
                    help="with --hints: critical sections around random slices too")
    args = ap.parse_args(argv)
    if args.hints:
        return hint_run(args.seed, args.start, args.programs, args.jobs, args.locks)
    shape = replace(WIDE, interleavings=args.interleavings, plain=not args.no_plain,
                    stable_invariants=not args.no_stable_invariants)
    jobs = [(args.seed, i, shape) for i in range(args.start, args.start + args.programs)]
    print(f"differential run: {args.programs} programs from #{args.start}, seed {args.seed}, "
          f"{args.jobs} jobs, ≤ {shape.interleavings} interleavings each"
          + ("" if shape.plain else ", without Plain fields")
          + ("" if shape.stable_invariants else ", no stable invariants"), flush=True)
    start = time.perf_counter()
    kinds: Counter[str] = Counter()
    multi = brute = dpor = done = 0
    every = max(1, args.programs // 20)
    with multiprocessing.Pool(args.jobs) if args.jobs > 1 else _Serial() as pool:
        for out in pool.imap(check, jobs, chunksize=8):
            done += 1
            if out.problems:
                pool.terminate()
                return report(args.seed, out, shape, shrinking=not args.no_shrink)
            kinds.update(out.kinds)
            multi += out.rounds > 1
            brute += out.brute
            dpor += out.dpor
            if done % every == 0 or done == args.programs:
                el = time.perf_counter() - start
                print(f"  {done}/{args.programs} programs, 0 disagreements, {el:.0f} s", flush=True)
    el = time.perf_counter() - start
    print("findings of brute force, by kind (programs): "
          + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    print(f"executions: brute force {brute}, DPOR with caching {dpor}; "
          f"{multi} programs took DPOR more than one visibility round; {el:.0f} s")
    print(f"{args.programs} programs, 0 disagreements")
    return 0


def hint_check(job: tuple[int, int, bool]) -> tuple[int, str, list[str]]:
    """One program of the hint-mutation generator: (index, its spec, the problems)."""
    seed, index, locks = job
    spec, ghost_final = hint_spec(random.Random(f"hints:{seed}:{index}"), locks)
    v = differential(random_program(spec, 3, 1, None, ghost_final))
    return index, f"random_program({spec!r}, 3, 1, None, {ghost_final!r})", v.problems


def hint_run(seed: int, start: int, programs: int, jobs: int, locks: bool) -> int:
    """``--hints``: programs around the one whose reversal must be followed (no
    shrinking: they are small)."""
    print(f"differential run (hint mutations{', with locks' if locks else ''}): {programs} "
          f"programs from #{start}, seed {seed}, {jobs} jobs", flush=True)
    t0 = time.perf_counter()
    every = max(1, programs // 20)
    done = 0
    with multiprocessing.Pool(jobs) if jobs > 1 else _Serial() as pool:
        for index, source, problems in pool.imap(
                hint_check, [(seed, i, locks) for i in range(start, start + programs)],
                chunksize=8):
            done += 1
            if problems:
                pool.terminate()
                print(f"program {index} (seed {seed}) disagrees:\n{source}\n"
                      + "\n".join(problems))
                return 1
            if done % every == 0 or done == programs:
                print(f"  {done}/{programs} programs, 0 disagreements, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
    print(f"{programs} programs, 0 disagreements")
    return 0


def report(seed: int, out: Outcome, shape: Shape, *, shrinking: bool) -> int:
    """Print the disagreeing program (shrunk) as code, and what disagrees."""
    spec = spec_of(seed, out.index, shape)
    print(f"\nprogram #{out.index} (seed {seed}) DISAGREES:")
    for p in out.problems:
        print("  " + p)
    if shrinking:
        spec = shrink(spec, lambda s: bool(problems_of(s)))
        print("\nshrunk to:")
        for p in problems_of(spec):
            print("  " + p)
    print(f"\n# reproduce: python bench/differential.py --seed {seed} --start {out.index} "
          "--programs 1")
    print(f"# spec: {spec!r}\n")
    print(wide_source(spec, f"disagreement-{out.index}"))
    return 1


class _Serial:
    """The Pool interface, in this process (``--jobs 1``)."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap(self, fn: Callable[[Any], Outcome], items: list[Any],
             chunksize: int = 1) -> Iterator[Outcome]:
        return map(fn, items)

    def terminate(self) -> None:
        return None


if __name__ == "__main__":
    sys.exit(main())
