"""Matrix and sweep cells as Ray tasks (``pfnlab matrix --ray``, ``pfnlab sweep --ray``).

A cell is one check (pfnlab.matrix.run_cell), named by variant, scenario and options;
pfnlab.cellrun sends cells here when ``--ray`` is given. A Ray worker is a fresh process:
the built-in model is imported there, and the model files the driver loaded travel with
each task (their path and text): a worker loads each one from its path when the file
there is the same, else from a copy of the text, so that its scenarios, variants, kernel
functions and properties are registered as in the driver. Ray runs a task again when its
worker dies (``max_retries``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable

from pfnlab.explore.search.parallel import RETRIES, ray_init
from pfnlab.matrix import Cell, CellError, Options, check_pair

#: (path, text) of every model file the driver loaded
Models = tuple[tuple[str, str], ...]


def loaded_models() -> Models:
    """The model files loaded in this process, with their text."""
    from pfnlab.api import _LOADED

    out = []
    for path in sorted(_LOADED):
        with open(path, encoding="utf-8") as f:
            out.append((path, f.read()))
    return tuple(out)


def _load(models: Models) -> None:
    """In a worker: load each model file (the driver's path if it holds the same text)."""
    from pfnlab.api import load_model

    for path, text in models:
        try:
            with open(path, encoding="utf-8") as f:
                same = f.read() == text
        except OSError:
            same = False
        if not same:
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            folder = os.path.join(tempfile.gettempdir(), f"pfnlab-models-{digest}")
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, os.path.basename(path))
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        load_model(path)


def _cell(variant: str, scenario: str, opts: Options, models: Models) -> Cell | str:
    """The Ray task: the cell, or the model error's message (``FILE:LINE: ...``)."""
    _load(models)
    try:
        return check_pair((0, variant, scenario, opts))[1]
    except CellError as e:
        return str(e)


def run_cells_on_ray(cells: list[tuple[str, str, Options]], cpus: int | None,
                     address: str | None, finish: Callable[[int, Cell], object]) -> None:
    """Run ``cells`` as Ray tasks on a local instance with ``cpus`` CPUs (``address``
    None) or on the cluster at ``address``; ``finish(i, cell)`` as each one ends. Ctrl-C
    cancels the tasks still running. A model error raises CellError."""
    ray = ray_init(cpus, address)
    remote = ray.remote(num_cpus=1, max_retries=RETRIES)(_cell)
    models = ray.put(loaded_models())
    refs = {remote.remote(v, s, o, models): i for i, (v, s, o) in enumerate(cells)}
    try:
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            i = refs.pop(done[0])
            got = ray.get(done[0])
            if isinstance(got, str):
                raise CellError(got)
            finish(i, got)
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)
