"""The engine against the independent reference (``tests/engine/reference.py``) on the
targeted programs (``tests/engine/targeted.py``): shared by
``tests/engine/test_targeted.py`` and ``bench/targeted.py``.

Every search the engine offers runs the program: brute force, DPOR with and without state
caching, the parallel search on two simulated workers at a random frontier depth (tasks
back in a random order, other workers' states delivered mid-task), and, when asked, on two
worker processes (``--jobs 2``). Each must be exhaustive, and every finding it reports must
replay. Against the reference:

- a program without data races (none reachable in the reference): the same findings, as
  (kind, property), and the same final states;
- a racy program: the engine reports a data race (as such, or as a use after free when a
  free is one of the two accesses), and nothing the reference cannot reach: its other
  findings and its final states are a subset (the reduced search stops an execution at
  its first race: past it, the DRF premise of Plain fields is gone).
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from typing import Any

from pfnlab.explore.search import Budget, Result
from pfnlab.explore.search.brute import explore_brute
from pfnlab.explore.search.dpor import SourceDpor
from pfnlab.explore.search.parallel import InProcess, LocalProcesses, explore_parallel
from tests.engine import reference, targeted
from tests.engine.oracle import check_replays, typed_final_states
from tests.engine.targeted import Spec


def searches(spec: Spec, rng: random.Random, local: bool = False
             ) -> dict[str, Callable[[Any], Result]]:
    """The engine's searches to run on ``spec`` (each takes a fresh Program)."""
    depth = rng.randint(1, 4)
    seed = rng.randrange(1 << 30)
    late = rng.random() < 0.5
    out: dict[str, Callable[[Any], Result]] = {
        "brute": lambda p: explore_brute(p, Budget(), stop_first=False,
                                         collect_final_states=True),
        "dpor cached": lambda p: SourceDpor(p, Budget(), cache=True, stop_first=False,
                                            collect_final_states=True).run(),
        "dpor uncached": lambda p: SourceDpor(p, Budget(), cache=False, stop_first=False,
                                              collect_final_states=True).run(),
        f"parallel depth {depth}{' late' if late else ''}": lambda p: explore_parallel(
            p, Budget(), InProcess(2, seed, late), stop_first=False,
            collect_final_states=True, depth=depth),
    }
    if local:
        out["--jobs 2"] = lambda p: explore_parallel(
            p, Budget(), LocalProcesses(2), stop_first=False, collect_final_states=True,
            depth=depth)
    return out


def compare(spec: Spec, seed: int = 0, local: bool = False) -> list[str]:
    """Where the engine disagrees with the reference on ``spec`` (module docstring)."""
    try:
        ref = reference.run(spec)
    except Exception:
        return ["reference crashed:\n" + traceback.format_exc()]
    problems: list[str] = []
    rng = random.Random(seed)
    for who, search in searches(spec, rng, local).items():
        prog = targeted.program(spec, f"targeted-{who.split()[0]}")
        try:
            with typed_final_states():
                res = search(prog)
        except Exception:
            problems.append(f"{who}: crashed:\n{traceback.format_exc()}")
            continue
        problems += [f"{who}: {p}" for p in disagreements(ref, res)]
        problems += check_replays(prog, res, who)
    return problems


def disagreements(ref: reference.Outcome, res: Result) -> list[str]:
    """Where one search's result ``res`` disagrees with the reference's ``ref``."""
    out = []
    if not res.exhaustive:
        out.append(f"not exhaustive: {res.coverage}")
    got = {f.key for f in res.findings}
    final = res.final_states
    if not ref.racy:
        if got != ref.findings:
            out.append(f"findings {sorted(got)}, the reference {sorted(ref.findings)}")
        if final != ref.final_states:
            out.append(_diff("final states", ref.final_states, final))
    else:
        if not got & {("data-race", "data-race"), ("use-after-free", "use-after-free")}:
            out.append(f"a racy program, but no race reported: {sorted(got)}")
        if not got <= ref.findings:
            out.append(f"findings {sorted(got - ref.findings)} the reference cannot reach")
        if not final <= ref.final_states:
            out.append(_diff("final states the reference cannot reach", set(), final))
    return out


def _diff(what: str, ref: set[Any], got: set[Any], limit: int = 2) -> str:
    only_ref = sorted(map(repr, ref - got))[:limit]
    only_got = sorted(map(repr, got - ref))[:limit]
    return f"{what}: only the reference {only_ref}; only the engine {only_got}"
