"""``pfnlab sweep``: every design by every scenario over a grid of sizes and host mm
versions, one table and one JSON."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from pfnlab.cli import exits, interrupt
from pfnlab.cli.app import app
from pfnlab.cli.common import (
    CELL_JOBS,
    MAX_STEPS,
    CellJobsOpt,
    CellsRayOpt,
    ExecOpt,
    FormatOpt,
    ModelOpt,
    ScenarioOpt,
    SecOpt,
    StepsOpt,
    StratOpt,
    VariantOpt,
    check_budget,
    check_format,
    check_jobs,
    check_size,
    check_strategy,
    fail,
    load,
    ray_address,
)
from pfnlab.cli.guard import guarded
from pfnlab.cli.matrix_cmd import exit_status, run_cells_cli
from pfnlab.cli.output import stdout_console
from pfnlab.cli.swarm_opts import SeedOpt, SwarmOpt, swarm_cells
from pfnlab.kernel.variant import VARIANTS
from pfnlab.matrix import CELL_SECONDS, Options
from pfnlab.model.scenario import SCENARIOS
from pfnlab.report.table import render_sweep
from pfnlab.sweep import SweepOptions, cells_to_run, run_sweep, sweep_json, validate_sweep

GridOpt = Annotated[list[str] | None, typer.Option(
    "--size", help="A size and the values to sweep, NAME=A,B,... (repeatable), e.g. "
    "--size vcpus=1,2 --size pages=1,2: every combination.")]
MmsOpt = Annotated[str, typer.Option(
    "--mm", help="Host mm versions to sweep, comma-separated: 5.4, 5.18, variant.")]


def grid(items: list[str] | None) -> dict[str, list[int]]:
    """``--size NAME=A,B`` options as a dict of value lists (each a valid size)."""
    out: dict[str, list[int]] = {}
    for it in items or []:
        name, eq, vals = it.partition("=")
        name = name.strip()
        if not eq or not name or not vals.strip():
            fail(f"--size takes NAME=A,B,... (e.g. --size vcpus=1,2), not {it!r}")
        values: list[int] = []
        for v in vals.split(","):
            try:
                n = int(v.strip())
            except ValueError:
                fail(f"--size {name}: {v.strip()!r} is not a whole number")
            check_size(name, n, "--size ")
            if n not in values:
                values.append(n)
        if name in out:
            fail(f"--size {name} given twice: give every value to sweep in one, e.g. "
                 f"--size {name}={','.join(map(str, dict.fromkeys(out[name] + values)))}")
        out[name] = values
    return out


@app.command(epilog=exits.epilog(
    "Exits as the matrix does: 1 when any cell has a violation or a model error, 3 when a "
    "cell is not fully covered and none has a violation, or on Ctrl-C."))
@guarded
def sweep(
    variant: VariantOpt = None,
    scenario: ScenarioOpt = None,
    size: GridOpt = None,
    mm: MmsOpt = "5.4",
    executions: ExecOpt = None,
    seconds: SecOpt = CELL_SECONDS,
    max_steps: StepsOpt = MAX_STEPS,
    strategy: StratOpt = "dpor",
    format: FormatOpt = "text",
    jobs: CellJobsOpt = CELL_JOBS,
    model: ModelOpt = None,
    ray: CellsRayOpt = None,
    swarm: SwarmOpt = None,
    seed: SeedOpt = None,
) -> None:
    """Check every variant against every scenario over a grid of sizes and host mm versions."""
    load(model)
    check_format(format)
    check_strategy(strategy)
    check_budget(executions, seconds, max_steps)
    if ray in (None, "local"):  # processes here (a cluster has its own CPUs)
        check_jobs(jobs)
    mms: list[str | None] = [m.strip() for m in mm.split(",") if m.strip()]
    opts = SweepOptions(
        variants=list(variant or VARIANTS),
        scenarios=list(scenario or SCENARIOS),
        grid=grid(size),
        mms=mms,
        base=Options(variants=[], scenarios=[], executions=executions, seconds=seconds,
                     max_steps=max_steps, strategy=strategy, jobs=jobs,
                     ray=ray_address(ray)),
    )
    assert opts.base is not None
    opts.base = swarm_cells(opts.base, swarm, seed, jobs, ray)
    try:
        validate_sweep(opts)
    except ValueError as e:
        fail(str(e))
    t0 = time.perf_counter()
    n = len(cells_to_run(opts))
    cells, not_run = run_cells_cli(lambda on_cell: run_sweep(opts, on_cell), n, ray)
    total = time.perf_counter() - t0
    if format == "json":
        print(json.dumps(sweep_json(cells, opts, not_run), indent=2))
    else:
        render_sweep(cells, stdout_console(), total)
    if not_run is not None:
        print(f"interrupted ({interrupt.cause()}): {len(cells)} of {n} cells checked, "
              f"{len(not_run)} not run", file=sys.stderr if format == "json" else sys.stdout)
    raise typer.Exit(exit_status(cells, not_run is None))
