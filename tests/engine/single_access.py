"""Random programs inside optimal DPOR's model: every step one access, no thread ever blocked.

The wide generator (programs.py) always declares Ghost fields and often locks and waits, so
every program it draws is outside the model and optimal DPOR searches it by source-DPOR.
These are drawn for the wakeup trees themselves: two to four threads over one to three
integer cells, each thread a few of

- ``("r", c)``: ``r = cell[c].v`` (the thread's one local);
- ``("w", c, k)``: ``cell[c].v = k``; ``("wr", c)``: ``cell[c].v = r + 1``;
- ``("inc", c)``: an atomic increment; ``("xchg", c, k)``: ``r = atomic exchange``;
- ``("fail", k)``: an assertion that fails when ``r == k`` (a finding mid-thread);

and optionally an unstable invariant ``cell[c].v != k`` (a finding that ends the
execution wherever it becomes false) and a stable goal ``cell[c].v == k``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pfnlab.explore import Check, Field, Instance, Program, Shared, atomic, fail

Op = tuple[Any, ...]


class Cell(Shared):
    v = Field(0)


@dataclass(frozen=True)
class Spec:
    """A program as data: the threads' ops, the number of cells, the checks."""

    threads: tuple[tuple[Op, ...], ...]
    cells: int
    invariant: tuple[int, int] | None = None   # (cell, value): cell.v != value
    goal: tuple[int, int] | None = None        # (cell, value): cell.v == value, stable


def draw(rng: random.Random) -> Spec:
    """A random :class:`Spec` (at most 4 threads of at most 4 ops)."""
    cells = rng.randint(1, 3)
    threads = []
    for _ in range(rng.randint(2, 4)):
        ops: list[Op] = []
        for _ in range(rng.randint(1, 4 if len(threads) < 2 else 2)):
            c = rng.randrange(cells)
            kind = rng.choice(["r", "r", "w", "wr", "inc", "xchg", "fail"])
            if kind == "w":
                ops.append(("w", c, rng.randint(0, 2)))
            elif kind == "xchg":
                ops.append(("xchg", c, rng.randint(0, 2)))
            elif kind == "fail":
                ops.append(("fail", rng.randint(1, 3)))
            else:
                ops.append((kind, c))
        threads.append(tuple(ops))
    inv = (rng.randrange(cells), rng.randint(2, 3)) if rng.random() < 0.3 else None
    goal = (rng.randrange(cells), rng.randint(1, 2)) if rng.random() < 0.3 else None
    return Spec(tuple(threads), cells, inv, goal)


def program(spec: Spec, name: str = "single-access") -> Program:
    """The pfnlab program of ``spec``."""

    def build() -> Instance:
        cells = [Cell(f"c{i}") for i in range(spec.cells)]

        def body(ops: tuple[Op, ...], tname: str) -> Any:
            def run() -> None:
                r = 0
                for op in ops:
                    kind = op[0]
                    if kind == "r":
                        r = cells[op[1]].v
                    elif kind == "w":
                        cells[op[1]].v = op[2]
                    elif kind == "wr":
                        cells[op[1]].v = r + 1
                    elif kind == "inc":
                        atomic(cells[op[1]], "v", lambda o: (o + 1, None))
                    elif kind == "xchg":
                        r = atomic(cells[op[1]], "v", lambda o, k=op[2]: (k, o))
                    elif kind == "fail" and r == op[1]:
                        fail("saw", f"{tname} read {r}")
            return run

        invariants = []
        if spec.invariant is not None:
            c, k = spec.invariant
            invariants.append(Check("inv", lambda: f"c{c}.v == {k}"
                                    if cells[c].v == k else None))
        goals = []
        if spec.goal is not None:
            c, k = spec.goal
            goals.append(Check("goal", lambda: cells[c].v == k, stable=True))
        return Instance(threads={f"t{i}": body(ops, f"t{i}")
                                 for i, ops in enumerate(spec.threads)},
                        invariants=invariants, goals=goals)

    return Program(name, build)
