"""What a model hands the engine: a build function that creates shared state and threads.

A :class:`Program` is deterministic: every call of ``build()`` creates the same objects (same
names, same initial values) and the same threads. The engine calls it once per execution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pfnlab.explore.knowledge import Knowledge


@dataclass(frozen=True)
class Check:
    """A named predicate over shared state, evaluated without scheduling points.

    For invariants and final checks ``fn`` returns ``None`` when the property holds and a
    one-line message when it does not. For goals ("sometimes" properties) it returns a bool.
    ``prop`` is the property id reported in findings (defaults to ``name``).

    ``stable`` declares an invariant that, once violated, stays violated (e.g. "no WARN has
    fired" over a log that only grows). Every equivalent interleaving then shows the
    violation, so the reduced search need not order the steps that change what it reads;
    an unstable invariant makes those steps mutually dependent (the visibility proviso).
    Declaring an invariant stable when it is not can hide violations. Goals are treated
    alike: a stable goal (once reached, reached in every extension) needs no ordering; the
    steps that change what an unstable goal reads are ordered so that no goal state of
    another interleaving is missed.
    """

    name: str
    fn: Callable[[], object]
    prop: str = ""
    stable: bool = False

    def __post_init__(self) -> None:
        if not self.prop:
            object.__setattr__(self, "prop", self.name)


#: A thread: one function, or a list of functions (its operations, run in order).
ThreadBody = Callable[[], object] | list[Callable[[], object]]


@dataclass
class Instance:
    """One freshly built model: its threads and the properties to check.

    - ``threads``: name → function run as a model thread (order is significant and stable),
      or a list of functions, the thread's *operations*, run in order: when one starts, the
      thread's state is just the operations left, so states that differ only in what
      finished operations read are one state (see :mod:`pfnlab.explore.threadstate`).
    - ``invariants``: checked after every step that wrote a field they read.
    - ``final_checks``: checked when every thread has finished (leaks, balance).
    - ``goals``: "sometimes" properties; the result says which were reached in some state.
    """

    threads: Mapping[str, ThreadBody]
    invariants: list[Check] = field(default_factory=list)
    final_checks: list[Check] = field(default_factory=list)
    goals: list[Check] = field(default_factory=list)


@dataclass(frozen=True)
class Program:
    """A named, deterministic model: ``build()`` returns a fresh :class:`Instance`.

    ``reduce=False`` turns off the reductions that coarsen steps (Lipton's movers for
    locks and SRCU, summaries of kernel-function calls), for differential testing and
    for reading every intermediate state; every verdict must be the same either way.
    ``knowledge`` is what searches of this program learnt about it (knowledge.py): every
    search, replay and worker of this object shares it; another ``Program`` object, even
    an equal one, starts knowing nothing.
    """

    name: str
    build: Callable[[], Instance]
    reduce: bool = True
    knowledge: Knowledge = field(default_factory=Knowledge, compare=False, repr=False)
