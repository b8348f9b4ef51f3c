"""A sweep: every selected design by every scenario over a grid of sizes and host mm
versions, one cell per distinct run (pfnlab.matrix checks each cell).

A grid point gives each size a value (``vcpus=1,2`` and ``pages=1,2``: four points) and
the host mm one of the versions asked. A scenario without one of the sizes is run once for
all the values of it (its cell lists the sizes it actually ran with), so no cell is
checked twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from pfnlab.cellrun import run_cells
from pfnlab.matrix import Cell, Options, as_json, validate
from pfnlab.model.scenario import SCENARIOS


@dataclass
class SweepOptions:
    """What to sweep: names, the grid (size -> values), host mm versions, per-cell budget."""

    variants: list[str]
    scenarios: list[str]
    grid: dict[str, list[int]] = field(default_factory=dict)
    mms: list[str | None] = field(default_factory=lambda: [None])
    base: Options | None = None  # budget, strategy, jobs (sizes and mm come from the grid)

    def cell_options(self) -> Options:
        """The matrix options every cell starts from."""
        return self.base or Options(variants=self.variants, scenarios=self.scenarios)


def points(opts: SweepOptions) -> list[tuple[dict[str, int], str | None]]:
    """Every grid point: (sizes, mm), sizes in the order given, mm last."""
    names = list(opts.grid)
    combos = itertools.product(*(opts.grid[n] for n in names)) if names else [()]
    return [(dict(zip(names, c, strict=True)), mm) for c in combos for mm in opts.mms]


def cells_to_run(opts: SweepOptions) -> list[tuple[str, str, Options]]:
    """The distinct (variant, scenario, options) of the sweep, grouped by scenario and
    point; each cell's options carry only the sizes its scenario has."""
    base = opts.cell_options()
    out: list[tuple[str, str, Options]] = []
    seen: set[tuple[str, str, tuple[tuple[str, int], ...], str | None]] = set()
    for sc in opts.scenarios:
        params = SCENARIOS[sc].params
        for sizes, mm in points(opts):
            mine = {k: v for k, v in sizes.items() if k in params}
            for v in opts.variants:
                key = (v, sc, tuple(sorted(mine.items())), mm)
                if key in seen:
                    continue
                seen.add(key)
                out.append((v, sc, replace(base, variants=[v], scenarios=[sc], sizes=mine,
                                           mm=mm)))
    return out


def validate_sweep(opts: SweepOptions) -> None:
    """Raise ValueError, saying what is valid, for any bad name, size, value or mm."""
    if not opts.mms:
        raise ValueError("--mm: give at least one host mm version")
    for name, values in opts.grid.items():
        if not values:
            raise ValueError(f"--size {name}: give at least one value")
    # every point must be a valid matrix run (names, sizes, budget, mm)
    for sizes, mm in points(opts):
        validate(replace(opts.cell_options(), variants=opts.variants,
                         scenarios=opts.scenarios, sizes=sizes, mm=mm))


def run_sweep(opts: SweepOptions, on_cell: Callable[[Cell], object] | None = None
              ) -> list[Cell]:
    """Check every cell of the sweep (``opts.base.jobs`` worker processes). Ctrl-C raises
    :class:`~pfnlab.cellrun.MatrixInterrupted` with the cells checked, as the matrix does."""
    validate_sweep(opts)
    base = opts.cell_options()
    return run_cells(cells_to_run(opts), base.jobs, on_cell, base.ray)


def sweep_json(cells: Iterable[Cell], opts: SweepOptions,
               not_run: Iterable[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The sweep as JSON: the grid, and the matrix document's records and cells, each with
    its sizes and host mm."""
    doc = as_json(cells, opts.cell_options(), not_run,
                  where=lambda c: {"sizes": c.sizes, "mm": c.mm or "5.4"})
    doc["schema"] = "pfnlab.sweep/1"
    params = doc["parameters"]
    for k in ("sizes", "mm", "variants", "scenarios"):
        params.pop(k, None)
    params.update(variants=opts.variants, scenarios=opts.scenarios, grid=opts.grid,
                  mm=[m or "5.4" for m in opts.mms])
    return doc
