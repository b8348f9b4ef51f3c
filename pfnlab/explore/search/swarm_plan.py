"""A swarm's members (swarm.py): what each is, and how one seed draws all of them (its own
file, so that the processes and Ray tasks that run members, swarm_workers.py and
swarm_ray.py, need not import the swarm that runs them)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pfnlab.explore.search.bounded import Bounded
from pfnlab.explore.search.pct import Pct
from pfnlab.explore.search.random_walk import RandomWalk
from pfnlab.explore.search.strategy import Strategy

#: the strategies a swarm's members take in turn (the exhaustive ones would each search
#: the same executions: a swarm of them is one search run N times)
FAMILY = ("random", "pct", "bounded")
#: the preemption bounds bounded members take in turn
BOUNDS = (0, 1, 2)
#: the bug depths PCT members draw from
DEPTHS = (2, 3, 4, 5)


@dataclass(frozen=True)
class Member:
    """One search of a swarm: member ``index`` (from 1), its ``strategy`` and ``seed``
    (bounded: the seed of its threads' priority order), PCT's bug ``depth`` and the
    bounded search's ``preemptions``."""

    index: int
    strategy: str
    seed: int
    depth: int = 0
    preemptions: int = 0

    @property
    def label(self) -> str:
        """What this member is, in a few words ("pct depth 3, seed 123"; bounded: its
        preemption bound and the seed of its thread order)."""
        if self.strategy == "pct":
            return f"pct depth {self.depth}, seed {self.seed}"
        if self.strategy == "bounded":
            return f"bounded ≤ {self.preemptions}, order seed {self.seed}"
        return f"random, seed {self.seed}"

    def strategy_object(self, executions: int) -> Strategy:
        """The search this member runs (random and PCT: ``executions`` executions)."""
        if self.strategy == "pct":
            return Pct(executions, self.depth, self.seed)
        if self.strategy == "bounded":
            return Bounded(self.preemptions, cache=True, order=self.seed)
        return RandomWalk(executions, self.seed)

    def as_json(self) -> dict[str, Any]:
        """The member's configuration as JSON fields."""
        out: dict[str, Any] = {"index": self.index, "strategy": self.strategy,
                               "seed": self.seed}
        if self.strategy == "pct":
            out["depth"] = self.depth
        if self.strategy == "bounded":
            out["preemptions"] = self.preemptions
        return out


def plan(n: int, seed: int, family: Sequence[str] = FAMILY) -> list[Member]:
    """The ``n`` members of the swarm of ``seed``: they take the strategies of ``family``
    in turn (bounded ones the bounds of :data:`BOUNDS` in turn), and each draws its seed
    (and a PCT member its depth) from one generator seeded with ``seed``. ValueError for
    ``n`` < 1 or a strategy outside :data:`FAMILY`."""
    if n < 1:
        raise ValueError(f"a swarm has at least 1 member, not {n}")
    if not family:
        raise ValueError("a swarm needs at least one strategy")
    wrong = [s for s in family if s not in FAMILY]
    if wrong:
        raise ValueError(f"a swarm's members are {', '.join(FAMILY)} searches, not "
                         f"{', '.join(wrong)}: an exhaustive strategy covers the same "
                         "executions in every member")
    rng = random.Random(seed)
    out: list[Member] = []
    bounded = 0
    for i in range(n):
        kind = family[i % len(family)]
        member = Member(i + 1, kind, rng.randrange(2**32))
        if kind == "pct":
            member = replace(member, depth=rng.choice(DEPTHS))
        elif kind == "bounded":
            member = replace(member, preemptions=BOUNDS[bounded % len(BOUNDS)])
            bounded += 1
        out.append(member)
    return out
