"""The targeted differential run: each reduction against the independent reference, on
programs drawn to break its assumption (issue 25).

Run from the repository root::

    python bench/targeted.py --programs 10000                  # every profile, all cores
    python bench/targeted.py --profile stable --programs 20000 --seed 2
    python bench/targeted.py --profile alloc --start 4711 --programs 1   # one program

Program ``i`` of a profile and seed is drawn by ``random.Random(f"{seed}:{profile}:{i}")``
with ``tests/engine/targeted.py``'s generator, so any program can be re-created alone and
the run does not depend on the number of jobs. Each is checked by
``tests/engine/against_reference.py``: brute force, DPOR with and without caching and the
parallel search on simulated workers at a random frontier depth, against the reference
interpreter (``tests/engine/reference.py``), which shares no code with the engine; every
``--local-every``-th program also on two worker processes.

Per profile the last line is ``PROFILE: N programs, 0 disagreements``; otherwise the
first disagreeing program (in program order) is shrunk greedily and printed with what
disagrees, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engine import reference, targeted  # noqa: E402
from tests.engine.against_reference import compare  # noqa: E402
from tests.engine.targeted import PROFILES, Op, Spec  # noqa: E402


def spec_of(seed: int, profile: str, index: int) -> Spec:
    """Program ``index`` of ``profile`` and ``seed``."""
    return targeted.draw(random.Random(f"{seed}:{profile}:{index}").randint, profile)


def check(job: tuple[int, str, int, bool]) -> tuple[int, list[str], list[str]]:
    """(index, disagreements, kinds of the reference's findings) of one program."""
    seed, profile, index, local = job
    spec = spec_of(seed, profile, index)
    try:
        problems = compare(spec, seed=index, local=local)
        kinds = sorted({k for k, _p in reference.run(spec).findings}) or ["none"]
    except Exception:
        return index, ["crash:\n" + traceback.format_exc()], []
    return index, problems, kinds


def _smaller(spec: Spec) -> Iterator[Spec]:
    threads = spec.threads
    if len(threads) > 2:
        for t in range(len(threads)):
            yield replace(spec, threads=threads[:t] + threads[t + 1:],
                          pins=tuple(tuple(w for w in p if w != f"t{t}") for p in spec.pins))
    for t, ops in enumerate(threads):
        for new in _without(ops):
            if new:
                yield replace(spec, threads=(*threads[:t], new, *threads[t + 1:]))
    for i, p in enumerate(spec.pins):
        if p:
            yield replace(spec, pins=(*spec.pins[:i], (), *spec.pins[i + 1:]))


def _without(ops: tuple[Op, ...]) -> Iterator[tuple[Op, ...]]:
    for i, op in enumerate(ops):
        yield ops[:i] + ops[i + 1:]
        if op[0] == "if":
            yield ops[:i] + op[2] + ops[i + 1:]


def shrink(spec: Spec, bad: Callable[[Spec], bool]) -> Spec:
    """Greedily simplify ``spec`` while ``bad`` still holds."""
    progress = True
    while progress:
        progress = False
        for cand in _smaller(spec):
            if bad(cand):
                spec, progress = cand, True
                break
    return spec


def run_profile(profile: str, args: argparse.Namespace) -> int:
    """One profile's run; 0 when every program agrees."""
    jobs = [(args.seed, profile, i, args.local_every > 0 and i % args.local_every == 0)
            for i in range(args.start, args.start + args.programs)]
    print(f"{profile}: {args.programs} programs from #{args.start}, seed {args.seed}, "
          f"{args.jobs} jobs", flush=True)
    t0 = time.perf_counter()
    kinds: Counter[str] = Counter()
    done = 0
    every = max(1, args.programs // 10)
    # (worker processes that may start worker processes of their own: --local-every)
    with ProcessPoolExecutor(args.jobs) if args.jobs > 1 else _Serial() as pool:
        for index, problems, found in pool.map(check, jobs, chunksize=4):
            done += 1
            if problems:
                pool.shutdown(cancel_futures=True)
                return report(args.seed, profile, index, problems, shrinking=not args.no_shrink)
            kinds.update(found)
            if done % every == 0 or done == args.programs:
                print(f"  {done}/{args.programs} programs, 0 disagreements, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
    print("  the reference's findings, by kind (programs): "
          + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    print(f"{profile}: {args.programs} programs, 0 disagreements")
    return 0


def report(seed: int, profile: str, index: int, problems: list[str], *,
           shrinking: bool) -> int:
    spec = spec_of(seed, profile, index)
    print(f"\n{profile} program #{index} (seed {seed}) DISAGREES:")
    for p in problems:
        print("  " + p)
    if shrinking:
        spec = shrink(spec, lambda s: bool(compare(s, seed=index)))
        print("\nshrunk to:")
        for p in compare(spec, seed=index):
            print("  " + p)
    print(f"\n# reproduce: python bench/targeted.py --profile {profile} --seed {seed} "
          f"--start {index} --programs 1")
    print(f"# spec: {spec!r}\n")
    print(targeted.source(spec, f"disagreement-{index}"))
    return 1


class _Serial:
    """The executor's interface, in this process (``--jobs 1``)."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn: Callable[..., object], items: list[object],
            chunksize: int = 1) -> Iterator[object]:
        return map(fn, items)

    def shutdown(self, cancel_futures: bool = False) -> None:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", action="append", choices=PROFILES,
                    help="a profile to run (repeatable; default: every profile)")
    ap.add_argument("--programs", type=int, default=10_000, help="programs per profile")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="index of the first program")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--local-every", type=int, default=50,
                    help="run every N-th program on two worker processes too (0: never)")
    ap.add_argument("--no-shrink", action="store_true", help="print the program as drawn")
    args = ap.parse_args(argv)
    status = 0
    for profile in args.profile or PROFILES:
        status = max(status, run_profile(profile, args))
        if status:
            break
    return status


if __name__ == "__main__":
    sys.exit(main())
