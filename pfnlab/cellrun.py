"""Many cells at once: worker processes (forked, so models loaded with ``--model`` come
along), or Ray tasks (ray_cells.py); Ctrl-C stops them and says what was checked.

Each cell runs in a process of its own, forked for it: a worker that dies (killed, out of
memory, a model calling ``os._exit``) is seen at once, and that cell alone is reported as
a model error naming how it died, while the others go on (a pool of long-lived workers
would lose the cell and wait for it forever).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from typing import Any

from pfnlab.explore.search.common import INTERRUPTED_BY
from pfnlab.explore.search.parallel.forking import start_worker, worker_started
from pfnlab.matrix import Cell, CellError, Options, check_pair, interrupted, lost_cell, validate
from pfnlab.ray_cells import run_cells_on_ray

Work = tuple[int, str, str, Options]
#: how long past its time budget a cell's search may run before its worker stops it
GRACE = 2.0


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
        if any(o.swarm is not None for _v, _s, o in cells):
            # a swarm's members are the parallelism (processes or Ray tasks of its own):
            # its cells run in turn, here
            _run_here(work, finish)
        elif ray is not None:
            run_cells_on_ray(cells, jobs if jobs > 1 else None, ray or None, finish)
        elif jobs > 1 and len(pairs) > 1 and "fork" in mp.get_all_start_methods():
            _run_forked(work, jobs, finish)
        else:
            _run_here(work, finish)
    except KeyboardInterrupt:
        raise MatrixInterrupted([done[i] for i in sorted(done)],
                                [p for i, p in enumerate(pairs) if i not in done]) from None
    return [done[i] for i in sorted(done)]


def _run_here(work: list[Work], finish: Callable[[int, Cell], object]) -> None:
    """Each cell of ``work`` in turn, in this process (a cell spinning past its time
    budget outside its search stopped by the watchdog)."""
    for item in work:
        with _watched(item[3].seconds) as rang:
            try:
                i, cell = check_pair(item)
            except KeyboardInterrupt:  # the watchdog, outside the search
                if not rang:
                    raise
                i, cell = item[0], lost_cell(*item[1:], _outside(item[3]))
        finish(i, cell)
        if interrupted(cell) and not rang:  # Ctrl-C, not the watchdog
            raise KeyboardInterrupt


def _run_forked(work: list[Work], jobs: int, finish: Callable[[int, Cell], object]) -> None:
    """Each cell of ``work`` in a forked process of its own, ``jobs`` at a time (fork: the
    workers inherit every registered scenario and variant, those of model files loaded
    with ``--model`` included; spawn would only import the built-ins again)."""
    ctx = mp.get_context("fork")
    queue = deque(work)
    running: dict[Connection, tuple[Any, Work]] = {}
    try:
        while queue or running:
            while queue and len(running) < jobs:
                item = queue.popleft()
                recv, proc = start_worker(ctx, _cell_worker, (os.getpid(), item), jobs)
                running[recv] = (proc, item)
            for conn in wait(list(running)):
                assert isinstance(conn, Connection)
                proc, (i, variant, scenario, opts) = running.pop(conn)
                try:
                    kind, got = conn.recv()
                except (EOFError, OSError):  # it died before it could send the cell
                    proc.join()
                    finish(i, lost_cell(variant, scenario, opts, _died(proc.exitcode)))
                    continue
                finally:
                    conn.close()
                proc.join()
                if kind == "error":
                    raise CellError(got)
                finish(i, got if kind == "cell" else lost_cell(variant, scenario, opts, got))
    finally:
        for proc, _item in running.values():
            proc.kill()
        for proc, _item in running.values():
            proc.join()


def _cell_worker(parent: int, item: Work, out: Connection) -> None:
    """In a forked worker: check one cell and send ``("cell", cell)``, or ``("error",
    message)`` for a model error (one that ends the process, ``SystemExit``, included)."""
    worker_started(parent)
    overrun = ""
    try:
        with _watched(item[3].seconds):
            try:
                msg: tuple[str, Any] = ("cell", check_pair(item)[1])
            except KeyboardInterrupt:  # the watchdog, outside the search (which is cut)
                overrun = _outside(item[3])
                raise
    except CellError as e:
        msg = ("error", str(e))
    except KeyboardInterrupt:
        msg = ("lost", overrun)
    except BaseException as e:  # sys.exit() in model code, and the like
        from pfnlab.api import model_error
        from pfnlab.model.scenario import SCENARIOS

        _i, variant, scenario, _opts = item
        msg = ("error", str(model_error(e, f"{variant} / {scenario}",
                                        SCENARIOS[scenario].build)))
    out.send(msg)
    out.close()


@contextmanager
def _watched(seconds: float | None) -> Iterator[list[bool]]:
    """Check a cell inside this block: :data:`GRACE` seconds past its time budget, its
    search is interrupted as by Ctrl-C (the cell is cut and says why), and the list
    yielded becomes true: a model thread that never reaches a scheduling point keeps the
    search from looking at its clock. Nothing without a budget, outside the main thread,
    or where the process has an alarm of its own (a SIGALRM handler)."""
    rang: list[bool] = []
    if seconds is None or threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None):
        yield rang
        return
    cause = INTERRUPTED_BY[0]

    def ring(signum: int, frame: Any) -> None:
        rang.append(True)
        INTERRUPTED_BY[0] = (f"--seconds {seconds:g} passed inside one step: a model "
                             "thread that never reaches a scheduling point?")
        raise KeyboardInterrupt

    prev = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds + GRACE)
    try:
        yield rang
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, prev)
        if rang:
            INTERRUPTED_BY[0] = cause


def _outside(opts: Options) -> str:
    """Why a cell that the watchdog stopped outside its search was not checked."""
    return (f"its check ran {GRACE:g} s past --seconds {opts.seconds:g} outside the search "
            "(a scenario build or model code that never returns?)")


def _died(code: int | None) -> str:
    """How a cell's worker process ended without sending its cell (exit status ``code``)."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        how = f"was killed by {name}"
        if -code == signal.SIGKILL:
            how += " (out of memory, or killed)"
    else:
        how = f"exited with status {code} (model code calling os._exit?)"
    return (f"the worker process checking this cell {how}; check the cell alone (pfnlab "
            "check) to see where")
