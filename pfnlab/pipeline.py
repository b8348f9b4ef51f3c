"""Checking one cell: a design in a scenario, at some sizes, on a host mm.

Every way of checking goes through here (the Python API, ``pfnlab check``, the matrix and
sweep cells, ``diff``, ``thread`` and ``replay``): the names are looked up, the scenario
builds the program for the design, and the search (or a replay of one schedule) runs on
it. The caller parses its own inputs before, and renders what comes back after:

- :func:`program`: the program of a design in a scenario;
- :func:`check`: the search of that program with :class:`Search` options, returned as a
  :class:`Checked` (the program, the search's result, its time, what the explored
  executions never ran of the code under review);
- :func:`replay`: one schedule (a saved or another design's finding) run again on it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from pfnlab import catalog
from pfnlab.explore.program import Program
from pfnlab.explore.schedule import Schedule
from pfnlab.explore.search import Budget, ReplayResult, Strategy, explore
from pfnlab.explore.search import Result as SearchResult
from pfnlab.explore.search import replay as replay_schedule
from pfnlab.kernel.variant import Variant
from pfnlab.model.lines import LineTrace, UnreachedLines, review_lines
from pfnlab.model.reach import Unreached, recording, review
from pfnlab.model.scenario import Scenario
from pfnlab.model.vacuous import watching


def design(variant: str | Variant) -> Variant:
    """The design named ``variant`` (KeyError listing the known ones), or ``variant`` itself
    when it is one already (a design not registered: a thread probe)."""
    if isinstance(variant, Variant):
        return variant
    return catalog.design(variant)


def scenario_named(name: str) -> Scenario:
    """The scenario named ``name`` (KeyError listing the known ones)."""
    return catalog.scenario(name)


def own_sizes(scenario: str, sizes: Mapping[str, int] | None) -> dict[str, int]:
    """The ones of ``sizes`` that ``scenario`` has (a run over several scenarios gives
    each one its own)."""
    params = catalog.scenario(scenario).params
    return {k: v for k, v in (sizes or {}).items() if k in params}


def program(variant: str | Variant, scenario: str, sizes: Mapping[str, int] | None = None,
            mm: str | None = None) -> Program:
    """The program of ``variant`` in ``scenario`` at ``sizes`` (the scenario's defaults for
    the rest; ValueError for a size it does not have) on host mm ``mm`` (see
    :meth:`~pfnlab.model.scenario.Scenario.program`)."""
    return scenario_named(scenario).program(design(variant), mm=mm, **dict(sizes or {}))


@dataclass(frozen=True)
class Search:
    """How to search a cell's program (see :func:`~pfnlab.explore.search.explore`).

    Unlike ``explore``, every distinct finding is collected unless ``stop_first``."""

    #: a strategy's name, or a strategy configured already (a swarm: search/swarm.py)
    strategy: str | Strategy = "dpor"
    budget: Budget | None = None
    stop_first: bool = False
    #: replace each finding's execution by a minimal one (fewest preemptions, then steps)
    minimal: bool = True
    #: the preemption bound of the bounded strategy
    preemptions: int = 2
    #: how many runs the random and pct strategies make
    executions: int = 1000
    #: the seed of the random and pct strategies
    seed: int = 0
    #: the workers a DPOR search is split among (parallel.backend), None for this process
    backend: Any = None


@dataclass
class Checked:
    """One cell checked: what ran and what the search found."""

    variant: Variant
    scenario: Scenario
    #: every size of the scenario, the defaults included
    sizes: dict[str, int]
    mm: str | None
    program: Program
    result: SearchResult
    #: wall-clock seconds of the search
    seconds: float
    #: the code under review no explored execution ran (when asked for)
    unreached: Unreached | None = None
    #: the lines of the model no explored execution ran (when traced)
    lines: UnreachedLines | None = None
    #: the user's checks that never read shared state: they hold vacuously (vacuous.py)
    vacuous: list[str] = field(default_factory=list)
    #: for those that read shared state but returned early every time: what to say
    vacuous_why: dict[str, str] = field(default_factory=dict)


def check(variant: str | Variant, scenario: str, search: Search = Search(), *,
          sizes: Mapping[str, int] | None = None, mm: str | None = None,
          reach: bool = False,
          lines: AbstractContextManager[LineTrace] | None = None) -> Checked:
    """Search ``variant`` in ``scenario`` (at ``sizes``, on host mm ``mm``) with ``search``.

    With ``reach`` the calls made are recorded and the result says what of the code under
    review never ran (:func:`~pfnlab.model.reach.review`); ``lines`` (a
    :func:`~pfnlab.model.lines.tracing_lines` block) also traces the model's lines during
    the search. Whatever the model raises propagates (the caller names where).
    """
    v, sc = design(variant), scenario_named(scenario)
    given = dict(sizes or {})
    prog = sc.program(v, mm=mm, **given)
    t0 = time.perf_counter()
    with (recording() if reach or lines is not None else nullcontext()) as rec, \
            (lines if lines is not None else nullcontext()) as lt, watching() as watch:
        res = explore(prog, strategy=search.strategy, budget=search.budget,
                      stop_first=search.stop_first, minimal=search.minimal,
                      preemptions=search.preemptions, executions=search.executions,
                      seed=search.seed, backend=search.backend)
    seconds = time.perf_counter() - t0
    return Checked(
        variant=v, scenario=sc, sizes=sc.sizes(**given), mm=mm, program=prog, result=res,
        seconds=seconds,
        unreached=review(rec, v, sc) if rec is not None else None,
        lines=review_lines(lt, rec.called, v, sc) if lt is not None and rec is not None
        else None,
        vacuous=watch.vacuous(),
        vacuous_why=watch.why(),
    )


def replay(variant: str | Variant, scenario: str, schedule: Schedule, *,
           sizes: Mapping[str, int] | None = None, mm: str | None = None,
           promoted: Iterable[str] = (), strict: bool = True) -> ReplayResult:
    """Run ``schedule`` on ``variant`` in ``scenario`` (at ``sizes``, on host mm ``mm``),
    stepping as the search that found it did (it had ``promoted`` these reads to steps).
    ``strict``: stop where a step's label differs from the one the model now offers;
    otherwise follow thread names only."""
    prog = program(variant, scenario, sizes, mm)
    prog.knowledge.learn_all(promoted)
    return replay_schedule(prog, schedule, strict=strict)
