"""The differential oracle: brute force, DPOR with and without state caching, optimal DPOR
and replay must agree on one program. Shared by tests/engine/test_differential.py and
bench/differential.py.

For a program, :func:`differential` runs brute-force enumeration of every interleaving and
source-set DPOR with and without state caching and optimal DPOR, all collecting every
final state and every violation, and lists each disagreement:

- the sets of final states (compared with types: ``1``, ``True`` and ``1.0`` differ), of
  violations ``(kind, prop, message)`` and of goals reached must be equal; except that a
  violation of an invariant declared ``stable`` is compared by ``(kind, prop)``, its
  messages being a subset of brute force's: the search does not order the steps that change
  what a stable invariant reads (that is what ``stable`` is for), so it reports the
  violation at the first violating state of one interleaving of a class, and a message
  showing other values read there may differ between the interleavings of the class;
- every search must be exhaustive;
- executions: DPOR re-runs its whole search while the set of fields that invariants and
  goals read grows (``stats.rounds``). Each round explores a subtree of the tree of all
  interleavings whose leaves are incomparable, so each round runs at most as many executions
  as brute force; the reported number must be the sum over the rounds (so with one round it
  is at most brute force's, and with several it may exceed it);
- the schedule of every finding, replayed, must reproduce it (same kind, property, message);
- nothing may raise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution
from pfnlab.explore.search import Budget, Result, replay
from pfnlab.explore.search import common as search_common
from pfnlab.explore.search.brute import explore_brute
from pfnlab.explore.search.common import Clock
from pfnlab.explore.search.dpor import SourceDpor
from pfnlab.explore.search.optimal import OptimalDpor


def typed_final_state(ex: Execution) -> tuple[Any, ...]:
    """Like ``common.final_state`` but with values as their ``repr`` (a set of final states
    then keeps ``x = 1`` and ``x = True``, equal in Python, apart) and objects by name (not
    in creation order, which differs between interleavings of threads that allocate)."""
    out = []
    for obj in ex.objects:
        d = obj.__dict__
        out.append((d["_name"], d["_freed"] is not None,
                    tuple((f, repr(v)) for f, v in obj.fields().items())))
    return tuple(sorted(out))


@contextlib.contextmanager
def typed_final_states() -> Iterator[None]:
    """Within this block, searches collect typed final states (see typed_final_state)."""
    with mock.patch.object(search_common, "final_state", typed_final_state):
        yield


class CountingDpor(SourceDpor):
    """Source-DPOR that records the executions of each visibility round."""

    def __init__(self, program: Program, *, cache: bool) -> None:
        super().__init__(program, Budget(), cache=cache, stop_first=False,
                         collect_final_states=True)
        self.per_round: list[int] = []

    def _round(self, clock: Clock) -> bool:
        cut = super()._round(clock)
        self.per_round.append(self.r.stats.executions)
        return cut


class CountingOptimal(OptimalDpor):
    """Optimal DPOR that records the executions of each visibility round."""

    def __init__(self, program: Program) -> None:
        super().__init__(program, Budget(), stop_first=False, collect_final_states=True)
        self.per_round: list[int] = []

    def _round(self, clock: Clock) -> bool:
        cut = super()._round(clock)
        self.per_round.append(self.r.stats.executions)
        return cut


@dataclass
class Verdict:
    """What the searches said about one program, and where they disagree."""

    brute: Result
    dpor: dict[bool, Result]            # source-DPOR by cache on/off
    per_round: dict[bool, list[int]]    # DPOR executions of each round, by cache on/off
    optimal: Result                     # optimal DPOR (search/optimal.py)
    optimal_rounds: list[int]           # its executions of each round
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No disagreement."""
        return not self.problems


def _diff(what: str, a: set[Any], b: set[Any], limit: int = 3) -> str:
    only_a = sorted(map(repr, a - b))[:limit]
    only_b = sorted(map(repr, b - a))[:limit]
    return f"{what}: only brute force {only_a}; only the reduced search {only_b}"


def check_replays(program: Program, res: Result, who: str) -> list[str]:
    """Replay every finding's schedule of ``res``: each must reproduce its finding."""
    problems = []
    for f in res.findings:
        rr = replay(program, f.schedule)
        g = rr.find(f.key)
        got = None if g is None else (g.kind, g.prop, g.message)
        want = (f.kind, f.prop, f.message)
        if got != want or rr.diverged:
            problems.append(f"{who}: replay of the schedule of {want} gave {got} ({rr.message}): "
                            f"{[s.thread for s in f.schedule]}")
    return problems


def stable_invariants(program: Program) -> set[str]:
    """The properties of ``program``'s invariants declared stable."""
    probe = Execution(program, check_invariants=False)
    props = {inv.prop for inv in probe.instance.invariants if inv.stable}
    probe.close()
    return props


def compare_violations(brute: set[tuple[str, str, str]], red: set[tuple[str, str, str]],
                       stable: set[str]) -> str:
    """Where ``red``'s violations disagree with ``brute``'s ("" if nowhere; see above)."""

    def exact(vs: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        return {v for v in vs if not (v[0] == "invariant" and v[1] in stable)}

    def props(vs: set[tuple[str, str, str]]) -> set[tuple[str, str]]:
        return {(k, p) for k, p, _m in vs}

    if exact(red) != exact(brute):
        return _diff("violations", exact(brute), exact(red))
    if props(red) != props(brute):
        return _diff("violated properties", props(brute), props(red))
    if not red <= brute:
        return _diff("violations of stable invariants", brute, red)
    return ""


def differential(program: Program) -> Verdict:
    """Run brute force, DPOR (cache on and off) and replays on ``program``; compare them."""
    with typed_final_states():
        brute = explore_brute(program, stop_first=False, collect_final_states=True)
        dpor: dict[bool, Result] = {}
        per_round: dict[bool, list[int]] = {}
        for cache in (True, False):
            search = CountingDpor(program, cache=cache)
            dpor[cache] = search.run()
            per_round[cache] = search.per_round
        opt = CountingOptimal(program)
        optimal = opt.run()
    v = Verdict(brute, dpor, per_round, optimal, opt.per_round)
    p = v.problems
    stable = stable_invariants(program)
    if not brute.exhaustive:
        p.append(f"brute force not exhaustive: {brute.coverage}")
    p += check_replays(program, brute, "brute force")
    searches = [(f"dpor cache={c}", dpor[c], per_round[c]) for c in (True, False)]
    for who, red, rounds in [*searches, ("optimal dpor", optimal, opt.per_round)]:
        if not red.exhaustive:
            p.append(f"{who}: not exhaustive: {red.coverage}")
        if red.final_states != brute.final_states:
            p.append(f"{who}: " + _diff("final states", brute.final_states, red.final_states))
        wrong = compare_violations(brute.violations, red.violations, stable)
        if wrong:
            p.append(f"{who}: {wrong}")
        if set(red.goals_reached) != set(brute.goals_reached):
            p.append(f"{who}: goals reached {sorted(red.goals_reached)}, brute force "
                     f"{sorted(brute.goals_reached)}")
        n = red.stats.executions
        if red.stats.rounds != len(rounds) or n != sum(rounds):
            p.append(f"{who}: reports {n} executions in {red.stats.rounds} rounds, "
                     f"ran {rounds}")
        if any(k > brute.stats.executions for k in rounds):
            p.append(f"{who}: a round ran more executions than brute force: {rounds} > "
                     f"{brute.stats.executions}")
        if red.stats.rounds == 1 and n > brute.stats.executions:
            p.append(f"{who}: {n} executions in one round, brute force "
                     f"{brute.stats.executions}")
        p += check_replays(program, red, who)
    return v
