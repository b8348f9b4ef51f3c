"""``pfnlab matrix`` (and ``pfnlab`` alone): every variant by every scenario, one table."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import typer
from rich.console import Console
from rich.progress import Progress

from pfnlab.cellrun import MatrixInterrupted, run_matrix
from pfnlab.cli import exits, interrupt
from pfnlab.cli.app import app
from pfnlab.cli.common import (
    CELL_JOBS,
    MAX_STEPS,
    CellJobsOpt,
    CellsRayOpt,
    ExecOpt,
    FormatOpt,
    MmOpt,
    ModelOpt,
    ScenarioOpt,
    SecOpt,
    SizeOpt,
    StepsOpt,
    StratOpt,
    VariantOpt,
    check_format,
    check_strategy,
    fail,
    load,
    options,
    ray_address,
    sizes,
)
from pfnlab.cli.guard import guarded
from pfnlab.cli.output import stdout_console
from pfnlab.cli.swarm_opts import SeedOpt, SwarmOpt, swarm_cells
from pfnlab.explore.search.parallel import WorkersNotStarted
from pfnlab.kernel.variant import VARIANTS
from pfnlab.matrix import (
    CELL_SECONDS,
    NOT_COVERED,
    NOT_ESTABLISHED,
    VIOLATED,
    Cell,
    CellError,
    Options,
    as_json,
)
from pfnlab.model.scenario import SCENARIOS
from pfnlab.report.table import render_matrix

EPILOG = exits.epilog(
    "Exits 1 when any cell has a violation or a model error (a CI gate), 3 when a cell is "
    "not fully covered (a budget cut it, a goal was never reached) and none has a "
    "violation, or on Ctrl-C (the cells checked are printed, the rest listed as not run)."
)


def run_cells_cli(run: Callable[[Callable[[Cell], object] | None], list[Cell]], n: int,
                  ray: str | None) -> tuple[list[Cell], list[tuple[str, str]] | None]:
    """Run the ``n`` cells of a matrix or sweep (``run(on_cell)``) with a progress bar on
    the terminal: the cells, and the pairs Ctrl-C left unchecked (None if it did not come).
    A model error is reported as a model file's; a Ray that cannot start, as bad input."""
    try:
        if sys.stderr.isatty():  # progress on the terminal, whatever goes to stdout
            with Progress(console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("checking", total=n)

                def advance(cell: Cell) -> None:
                    bar.update(task, advance=1,
                               description=f"{cell.variant} / {cell.scenario}")

                return run(advance), None
        return run(None), None
    except MatrixInterrupted as e:
        return e.cells, e.not_run
    except CellError as e:
        from pfnlab.api import ModelFileError

        raise ModelFileError(str(e)) from None
    except WorkersNotStarted as e:  # the system refused the worker processes
        fail(str(e))
    except RuntimeError as e:  # Ray missing, or it could not start
        fail(f"--ray {ray}: {e}")


def exit_status(cells: list[Cell], complete: bool) -> int:
    """The matrix's exit status: see :data:`EPILOG`."""
    if not complete:
        return exits.INCONCLUSIVE
    if any(c.status() in (VIOLATED, "model-error") for c in cells):
        return exits.FOUND
    if any(c.status() in (NOT_COVERED, NOT_ESTABLISHED) for c in cells):
        return exits.INCONCLUSIVE
    return exits.CLEAN


@app.command(epilog=EPILOG)
@guarded
def matrix(
    variant: VariantOpt = None,
    scenario: ScenarioOpt = None,
    size: SizeOpt = None,
    executions: ExecOpt = None,
    seconds: SecOpt = CELL_SECONDS,
    max_steps: StepsOpt = MAX_STEPS,
    strategy: StratOpt = "dpor",
    format: FormatOpt = "text",
    jobs: CellJobsOpt = CELL_JOBS,
    mm: MmOpt = None,
    model: ModelOpt = None,
    ray: CellsRayOpt = None,
    swarm: SwarmOpt = None,
    seed: SeedOpt = None,
) -> None:
    """Check every variant against every scenario and print one verdict table."""
    load(model)
    check_format(format)
    check_strategy(strategy)
    opts = options(Options(
        variants=list(variant or VARIANTS),
        scenarios=list(scenario or SCENARIOS),
        sizes=sizes(size),
        executions=executions,
        seconds=seconds,
        max_steps=max_steps,
        strategy=strategy,
        jobs=jobs,
        mm=mm,
        ray=ray_address(ray),
    ))
    opts = swarm_cells(opts, swarm, seed, jobs, ray)
    t0 = time.perf_counter()
    n = len(opts.variants) * len(opts.scenarios)
    cells, not_run = run_cells_cli(lambda on_cell: run_matrix(opts, on_cell), n, ray)
    total = time.perf_counter() - t0
    if format == "json":
        print(json.dumps(as_json(cells, opts, not_run), indent=2))
    else:
        render_matrix(cells, stdout_console(), total)
    if not_run is not None:
        cut = sum(1 for c in cells if c.cut)
        part = f" ({cut} of them cut short)" if cut else ""
        print(f"interrupted ({interrupt.cause()}): {len(cells)} of {n} cells checked{part}, "
              f"{len(not_run)} not run", file=sys.stderr if format == "json" else sys.stdout)
    raise typer.Exit(exit_status(cells, not_run is None))
