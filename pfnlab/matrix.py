"""The main job: every variant by every scenario through the checker, one verdict per property.

A cell's verdict for a property comes only from the search that ran for that cell:

- ``violated``: the search found an execution that violates it (the one-line reason is the
  finding's message);
- ``holds``: the scenario checks it, the search covered every interleaving (up to
  equivalence) and none violates it, and every "sometimes" goal of the scenario was reached;
- ``not-covered``: the scenario checks it, nothing violated it, but the search was cut by a
  budget or bound, or a goal was never reached (a vacuous pass is not a pass);
- ``not-established``: the search covered every interleaving and none violates it, but some
  executions were cut short by a finding of another property that ends its execution (a
  use after free, a ``fail()``/``BUG_ON``, a model exception): what would have happened in
  the rest of them is unchecked. The reason says which property masked it in how many
  executions ("masked by no-metadata-after-teardown in 12 executions");
- ``n/a``: the scenario does not check it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from pfnlab import pipeline
from pfnlab.explore.search import Budget
from pfnlab.explore.search.common import masked
from pfnlab.explore.search.strategy import Strategy
from pfnlab.explore.search.swarm import FAMILY, Swarm, plan
from pfnlab.kernel.variant import VARIANTS, Variant
from pfnlab.model.scenario import SCENARIOS
from pfnlab.properties import PROPERTIES
from pfnlab.verdicts import (  # re-exported: pfnlab.matrix.Cell as before
    HOLDS,
    NA,
    NOT_COVERED,
    NOT_ESTABLISHED,
    VIOLATED,
    Cell,
    Verdict,
)

MM_CHOICES = (None, "5.4", "5.18", "variant")


CELL_SECONDS = 150.0


@dataclass
class Options:
    """What to run: names, sizes, budget and strategy."""

    variants: list[str]
    scenarios: list[str]
    sizes: dict[str, int] = field(default_factory=dict)
    executions: int | None = None
    #: per-cell cap: enough for every default cell to finish exhaustively on 2 cores
    #: (two vCPUs racing one unbind take up to about a minute); a cut cell says so
    seconds: float | None = CELL_SECONDS
    strategy: str = "dpor"
    preemptions: int = 2
    mm: str | None = None      # host mm: None/"5.4" (the thread's), "5.18", "variant"
    jobs: int = 1
    #: run the cells as Ray tasks: "" a local instance (``jobs`` CPUs), else an address
    ray: str | None = None
    #: one execution longer than this many steps is a finding (Budget.max_steps)
    max_steps: int = 10_000
    #: bug hunting: each cell is a swarm of this many members (search/swarm.py) planned
    #: from ``seed``, on ``jobs`` processes (or Ray tasks with ``ray``), cells in turn;
    #: ``strategy``, if one of swarm.FAMILY, is every member's
    swarm: int | None = None
    seed: int = 0


def validate(opts: Options) -> None:
    """Raise ValueError with a message listing what is valid, for any bad input."""
    bad = [v for v in opts.variants if v not in VARIANTS]
    if bad:
        raise ValueError(f"unknown variant {bad[0]!r}; valid variants: {', '.join(VARIANTS)}")
    bad = [s for s in opts.scenarios if s not in SCENARIOS]
    if bad:
        raise ValueError(
            f"unknown scenario {bad[0]!r}; valid scenarios: {', '.join(SCENARIOS)}"
        )
    for k, v in opts.sizes.items():
        having = [s for s in opts.scenarios if k in SCENARIOS[s].params]
        if not having:
            valid = sorted({p for s in opts.scenarios for p in SCENARIOS[s].params})
            raise ValueError(
                f"no selected scenario has a size {k!r}; valid sizes: {', '.join(valid)}"
            )
        if v < 1:
            raise ValueError(f"size {k}={v} must be at least 1")
    Budget(executions=opts.executions, seconds=opts.seconds, max_steps=opts.max_steps)
    if opts.max_steps < 1:
        raise ValueError("a step limit must be at least 1")
    if opts.mm not in MM_CHOICES:
        raise ValueError(
            f"unknown mm version {opts.mm!r}; valid: {', '.join(c for c in MM_CHOICES if c)}"
        )
    if opts.jobs < 1:
        raise ValueError("--jobs must be at least 1")
    if opts.swarm is not None and opts.swarm < 1:
        raise ValueError(f"--swarm {opts.swarm}: a swarm has at least 1 member")


def run_cell(variant: str | Variant, scenario: str, opts: Options) -> Cell:
    """Check one variant (by name, or a design not registered) against one scenario."""
    done = pipeline.check(
        variant, scenario,
        pipeline.Search(strategy=cell_strategy(opts),
                        budget=Budget(executions=opts.executions, seconds=opts.seconds,
                                      max_steps=opts.max_steps),
                        minimal=False, preemptions=opts.preemptions,
                        executions=opts.executions or 1000),
        sizes=pipeline.own_sizes(scenario, opts.sizes), mm=opts.mm, reach=True)
    res, sc = done.result, done.scenario
    assert done.unreached is not None
    unreached = done.unreached.lines(width=10_000)
    verdicts: dict[str, Verdict] = {}
    errors: list[str] = []
    found: dict[str, str] = {}
    for f in res.findings:
        if f.prop in PROPERTIES:
            found.setdefault(f.prop, f.message)
        else:
            errors.append(f"{f.kind} ({f.prop}): {f.message}")
    for pid in PROPERTIES:
        if pid in found:
            verdicts[pid] = Verdict(VIOLATED, found[pid])
        elif pid not in sc.properties:
            verdicts[pid] = Verdict(NA)
        elif not res.exhaustive:
            verdicts[pid] = Verdict(NOT_COVERED, res.coverage)
        elif res.goals_missed:
            verdicts[pid] = Verdict(
                NOT_COVERED, f"vacuous: goal never reached: {', '.join(res.goals_missed)}"
            )
        elif why := masked(res, pid):
            verdicts[pid] = Verdict(NOT_ESTABLISHED, why)
        else:
            verdicts[pid] = Verdict(HOLDS)
    return Cell(
        variant=done.variant.name,
        scenario=scenario,
        sizes=done.sizes,
        verdicts=verdicts,
        coverage=res.coverage,
        cut=res.interrupted,
        exhaustive=res.exhaustive,
        executions=res.stats.executions,
        states=res.stats.states,
        steps=res.stats.steps,
        seconds=done.seconds,
        goals_reached=res.goals_reached,
        goals_missed=res.goals_missed,
        model_errors=errors,
        unreached=unreached,
        mm=opts.mm,
    )


def cell_strategy(opts: Options) -> str | Strategy:
    """What searches a cell: ``opts.strategy``, or a swarm of ``opts.swarm`` members (the
    same members in every cell: one seed plans them all)."""
    if opts.swarm is None:
        return opts.strategy
    family = (opts.strategy,) if opts.strategy in FAMILY else FAMILY
    return Swarm(plan(opts.swarm, opts.seed, family), opts.seed, opts.jobs,
                 opts.executions or 1000, opts.ray)


class CellError(Exception):
    """A cell whose model raised (its scenario's build, or model code outside a thread):
    the message is ``FILE:LINE: variant / scenario: what``."""


def check_pair(args: tuple[int, str, str, Options]) -> tuple[int, Cell]:
    """``(i, run_cell(variant, scenario, opts))`` for ``args = (i, variant, scenario, opts)``;
    a model error becomes :class:`CellError` (``FILE:LINE: variant / scenario: what``)."""
    i, variant, scenario, opts = args
    try:
        return i, run_cell(variant, scenario, opts)
    except Exception as e:
        from pfnlab.api import model_error

        raise CellError(str(model_error(e, f"{variant} / {scenario}",
                                        SCENARIOS[scenario].build))) from None


def lost_cell(variant: str, scenario: str, opts: Options, why: str) -> Cell:
    """The cell of a check that never returned (its worker process died, ``why``): a model
    error, every property it checks not covered."""
    sc = SCENARIOS[scenario]
    verdicts = {pid: Verdict(NOT_COVERED, "not checked: its worker died") if pid in sc.properties
                else Verdict(NA) for pid in PROPERTIES}
    return Cell(variant=variant, scenario=scenario,
                sizes=pipeline.own_sizes(scenario, opts.sizes), verdicts=verdicts,
                coverage="not checked: its worker died", exhaustive=False, executions=0, states=0,
                steps=0, seconds=0.0, model_errors=[why], mm=opts.mm)


def interrupted(cell: Cell) -> bool:
    """Whether Ctrl-C cut the cell's search."""
    return cell.cut


def default_jobs() -> int:
    """Worker processes by default: the cores this process may use, at most 2."""
    from pfnlab.explore.search.parallel import default_workers

    return min(2, default_workers())


def as_json(cells: Iterable[Cell], opts: Options,
            not_run: Iterable[tuple[str, str]] | None = None,
            where: Callable[[Cell], dict[str, Any]] | None = None) -> dict[str, Any]:
    """The matrix as JSON: parameters and one record per (variant, scenario, property).

    ``not_run`` (the pairs Ctrl-C left unchecked) makes the document say it was cut:
    ``"interrupted": true`` and those pairs under ``"not_run"``. ``where(cell)`` adds
    fields to each of a cell's records (a sweep: its sizes and host mm)."""
    cells = list(cells)
    rows = []
    for c in cells:
        for pid, v in c.verdicts.items():
            row: dict[str, Any] = {
                "variant": c.variant,
                "scenario": c.scenario,
                "property": pid,
                "verdict": v.verdict,
                "executions": c.executions,
                "seconds": round(c.seconds, 3),
                "coverage": c.coverage,
            }
            if where is not None:
                row.update(where(c))
            if v.reason:
                row["reason"] = v.reason
            rows.append(row)
    params = asdict(opts)
    params.pop("jobs")
    params.pop("ray")
    return {
        "schema": "pfnlab.matrix/1",
        "interrupted": not_run is not None,
        "not_run": [{"variant": v, "scenario": s} for v, s in not_run or ()],
        "parameters": params,
        "results": rows,
        "cells": [
            {
                "variant": c.variant,
                "scenario": c.scenario,
                "sizes": c.sizes,
                "status": c.status(),
                "states": c.states,
                "steps": c.steps,
                "goals_reached": c.goals_reached,
                "goals_missed": c.goals_missed,
                "model_errors": c.model_errors,
                "unreached": c.unreached,
                **(where(c) if where is not None else {}),
            }
            for c in cells
        ],
    }
