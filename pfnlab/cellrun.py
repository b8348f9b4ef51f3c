"""Many cells at once: worker processes (forked, so models loaded with ``--model`` come
along), or Ray tasks (ray_cells.py); Ctrl-C stops them and says what was checked."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable

from pfnlab.explore.search.parallel.forking import signals_held, worker_started
from pfnlab.matrix import Cell, Options, check_pair, interrupted, validate
from pfnlab.ray_cells import run_cells_on_ray


class MatrixInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`run_matrix`: the cells checked (a cell whose search Ctrl-C cut
    says so in its coverage) and the (variant, scenario) pairs never run."""

    def __init__(self, cells: list[Cell], not_run: list[tuple[str, str]]) -> None:
        super().__init__(f"{len(cells)} cells checked, {len(not_run)} not run")
        self.cells = cells
        self.not_run = not_run


def run_matrix(opts: Options, on_cell: Callable[[Cell], object] | None = None) -> list[Cell]:
    """Every selected variant and scenario, in registry order (``jobs`` worker processes).

    ``on_cell`` is called with each cell as it is done (in the order they finish). Ctrl-C
    raises :class:`MatrixInterrupted` (a ``KeyboardInterrupt``) with the cells done so far
    (a cell whose search it cut included) and the pairs not run; workers are stopped at
    once, queued cells never start. A cell whose model raises stops the run with
    :class:`CellError`.
    """
    validate(opts)
    return run_cells([(v, s, opts) for v in opts.variants for s in opts.scenarios],
                     opts.jobs, on_cell, opts.ray)


def run_cells(cells: list[tuple[str, str, Options]], jobs: int,
              on_cell: Callable[[Cell], object] | None = None,
              ray: str | None = None) -> list[Cell]:
    """Check each (variant, scenario, options) on ``jobs`` worker processes, or as Ray
    tasks (``ray``: "" a local instance, else a cluster's address; pfnlab.ray_cells); the
    cells in the order given. Ctrl-C and model errors as :func:`run_matrix` (the pairs not
    run are (variant, scenario) pairs)."""
    pairs = [(v, s) for v, s, _o in cells]
    work = [(i, v, s, o) for i, (v, s, o) in enumerate(cells)]
    done: dict[int, Cell] = {}

    def finish(i: int, cell: Cell) -> None:
        done[i] = cell
        if on_cell:
            on_cell(cell)

    try:
        if ray is not None:
            run_cells_on_ray(cells, jobs if jobs > 1 else None, ray or None, finish)
        elif jobs > 1 and len(pairs) > 1:
            # fork: the workers inherit every registered scenario and variant, including
            # those of model files loaded with --model (spawn would only re-import built-ins)
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
            with signals_held():  # the workers fork here (forking.py)
                pool = (ctx or mp).Pool(min(jobs, len(pairs)), initializer=worker_started,
                                        initargs=(os.getpid(),))
            try:
                for i, cell in pool.imap_unordered(check_pair, work):
                    finish(i, cell)
            finally:
                pool.terminate()
                pool.join()
        else:
            for item in work:
                i, cell = check_pair(item)
                finish(i, cell)
                if interrupted(cell):
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise MatrixInterrupted([done[i] for i in sorted(done)],
                                [p for i, p in enumerate(pairs) if i not in done]) from None
    return [done[i] for i in sorted(done)]
