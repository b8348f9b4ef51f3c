"""What the commands share: their options, and the checks of every input before any work.

Sizes are capped (:data:`MAX_VCPUS`, :data:`MAX_SIZE`): the models are small by design and
a state space grows exponentially with every size (3 vCPUs by 3 pages does not finish in
ten minutes), so a larger size is a typo, and building it could take the machine's memory
before any budget is looked at.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer

from pfnlab.api import ModelFile, load_model
from pfnlab.cli.errors import fail
from pfnlab.explore.search import STRATEGIES
from pfnlab.matrix import Options, default_jobs, validate
from pfnlab.model.scenario import MAX_SIZE, MAX_VCPUS, size_cap

#: the default step limit of one execution (Budget.max_steps)
MAX_STEPS = 10_000
#: worker processes per core at most (--jobs): more only wait for the cores, and each
#: holds open files and memory (a million ran out of file descriptors)
JOBS_PER_CORE = 8


VariantOpt = Annotated[list[str] | None, typer.Option(
    "--variant", "-V", help="Variant to run (repeatable; default: all).")]
ScenarioOpt = Annotated[list[str] | None, typer.Option(
    "--scenario", "-S", help="Scenario to run (repeatable; default: all).")]
SizeOpt = Annotated[list[str] | None, typer.Option(
    "--size", help=f"A scenario size as NAME=N, e.g. --size vcpus=2 (repeatable); at most "
    f"{MAX_VCPUS} vCPUs, other sizes at most {MAX_SIZE}.")]
ExecOpt = Annotated[int | None, typer.Option(
    "--executions", help="Stop each search after this many executions (random and pct: "
    "run this many, default 1,000).")]
SecOpt = Annotated[float | None, typer.Option(
    "--seconds", help="Stop each search after this many seconds.")]
StepsOpt = Annotated[int, typer.Option(
    "--max-steps", help="One execution longer than this many steps is a finding "
    "(no-progress).")]
StratOpt = Annotated[str, typer.Option(
    "--strategy", help=f"Search strategy: {', '.join(STRATEGIES)}.")]
#: check: the strategy, or with --swarm the one strategy of every member (None: not given)
CheckStratOpt = Annotated[str | None, typer.Option(
    "--strategy", help=f"Search strategy: {', '.join(STRATEGIES)} (default dpor); with "
    "--swarm, the one strategy of every member (random, pct or bounded).",
    show_default=False)]
FormatOpt = Annotated[str, typer.Option("--format", help="Output format: text or json.")]
MmOpt = Annotated[str | None, typer.Option(
    "--mm", help="Host mm the designs run on: 5.4 (default, the 2019 thread's: teardown "
    "waits for page references), 5.18 (27674ef6c73f: it does not), or variant (each "
    "variant's own).")]
JobsOpt = Annotated[int | None, typer.Option(
    "--jobs", "-j", help="Split the DPOR search among this many worker processes (default: "
    "the cores this process may run on; 1: one process; the same findings and verdicts "
    "either way).",
    show_default=False)]
#: matrix and sweep: how many cells (one check each) run at once; default: the cores
CellJobsOpt = Annotated[int, typer.Option("--jobs", help="Worker processes.")]
CELL_JOBS = default_jobs()
RayOpt = Annotated[str | None, typer.Option(
    "--ray", help="Run the workers as Ray actors: alone (or 'local') a local Ray instance "
    "with --jobs CPUs, or the ADDRESS of a running cluster (pip install 'pfnlab\\[ray]'; a "
    "cluster with token authentication wants RAY_AUTH_MODE=token).",
    metavar="[local|ADDRESS]")]
CellsRayOpt = Annotated[str | None, typer.Option(
    "--ray", help="Run the cells (one check each) as Ray tasks: alone (or 'local') a local "
    "Ray instance with --jobs CPUs, or the ADDRESS of a running cluster (pip install "
    "'pfnlab\\[ray]'); the model files loaded travel with the tasks.",
    metavar="[local|ADDRESS]")]
FullOpt = Annotated[bool, typer.Option(
    "--full", help="Show every step of each trace, not only the kernel-level ones.")]
ModelOpt = Annotated[list[str] | None, typer.Option(
    "--model", "-m", help="A model file (.py) whose scenarios and variants to load "
    "(repeatable); see docs/tutorial.md.")]
OutputOpt = Annotated[str | None, typer.Option(
    "--output", "-o", help="Write the JSON report to this file (implies --format json); "
    "checked writable before the search starts. '-': standard output, the text report "
    "then going to standard error.")]


def load(models: list[str] | None) -> list[ModelFile]:
    """Load each model file; a broken one exits 2 with ``FILE:LINE: what is wrong``."""
    return [load_model(path) for path in models or []]


def models_json(files: list[ModelFile]) -> list[dict[str, str]]:
    """The model files a report came from (``replay`` loads them again): path and hash."""
    return [{"path": mf.path, "sha256": mf.sha256} for mf in files]


def load_recorded(doc: dict[str, Any], where: str, given: list[ModelFile]) -> list[str]:
    """Load the model files a report records (unless ``--model`` gave them): returns notes
    (a file that changed since); one that is gone exits 2 saying to pass ``--model``."""
    import hashlib
    import os

    notes: list[str] = []
    have = {mf.path for mf in given} | {mf.sha256 for mf in given}
    recs = doc.get("models") or []
    if not isinstance(recs, list):
        fail(f"{where}: not a valid pfnlab report: models: expected a list")
    for rec in recs:
        path = rec.get("path") if isinstance(rec, dict) else None
        if not isinstance(path, str):
            fail(f"{where}: not a valid pfnlab report: models: expected objects with a path")
        if os.path.abspath(path) in have or rec.get("sha256") in have:
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            if given:  # --model gave the declarations instead (the file moved)
                notes.append(f"note: {path} is not here; using the --model files")
                continue
            fail(f"{where}: the report comes from the model file {path}, which cannot be "
                 "read here: pass it with --model FILE")
        if rec.get("sha256") and hashlib.sha256(text.encode()).hexdigest() != rec["sha256"]:
            notes.append(f"note: {path} changed since the report was written; replaying "
                         "against the file as it is now")
        load_model(path)
    return notes


def sizes(items: list[str] | None) -> dict[str, int]:
    """``--size NAME=N`` options as a dict, each a whole number from 1 to its cap."""
    out: dict[str, int] = {}
    for it in items or []:
        name, eq, val = it.partition("=")
        name, val = name.strip(), val.strip()
        if not eq or not name:
            fail(f"--size takes NAME=N (e.g. --size vcpus=2), not {it!r}")
        try:
            n = int(val)
        except ValueError:
            fail(f"--size {name}: {val!r} is not a whole number")
        check_size(name, n, "--size ")
        if name in out and out[name] != n:
            fail(f"--size {name} given twice ({out[name]} and {n}): give it once")
        out[name] = n
    return out


def ray_address(ray: str | None) -> str | None:
    """``--ray``'s value as the runners take it: None (no Ray), "" (a local instance for
    ``local``), or a cluster's address."""
    return None if ray is None else ("" if ray == "local" else ray)


def check_size(name: str, n: object, where: str = "") -> None:
    """Refuse a size that is not a whole number from 1 to its cap."""
    if isinstance(n, bool) or not isinstance(n, int):
        fail(f"{where}{name}={n!r}: a size is a whole number")
    if n < 1:
        fail(f"{where}{name}={n}: sizes must be at least 1")
    cap = size_cap(name)
    if n > cap:
        what = (f"at most {cap} vCPUs" if name == "vcpus"
                else f"sizes are at most {cap} ({MAX_VCPUS} for vcpus)")
        fail(f"{where}{name}={n}: {what}; the state space grows exponentially with every "
             "size (devdax-unbind at 3 vCPUs by 3 pages takes some three minutes, 4 by 4 does not "
             "finish in ten)")


def check_format(fmt: str, valid: tuple[str, ...] = ("text", "json")) -> None:
    """Refuse an unknown ``--format``."""
    if fmt not in valid:
        fail(f"unknown format {fmt!r}; valid formats: {', '.join(valid)}")


def check_strategy(strategy: str) -> None:
    """Refuse an unknown ``--strategy``."""
    if strategy not in STRATEGIES:
        fail(f"unknown strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}")


def check_budget(executions: int | None, seconds: float | None, max_steps: int) -> None:
    """Refuse a budget that is not finite and positive (nan would mean no limit)."""
    if executions is not None and executions < 1:
        fail(f"--executions {executions}: an execution budget must be at least 1")
    if seconds is not None and not (0 < seconds < math.inf):
        fail(f"--seconds {seconds}: a time budget must be a positive number of seconds, "
             f"not {seconds!r}; leave it out for no limit")
    if max_steps < 1:
        fail(f"--max-steps {max_steps}: a step limit must be at least 1")


def check_jobs(jobs: int) -> None:
    """Refuse more worker processes (``--jobs``) on this machine than
    :data:`JOBS_PER_CORE` per core this process may run on."""
    from pfnlab.explore.search.parallel import default_workers

    cores = default_workers()
    cap = JOBS_PER_CORE * cores
    if jobs > cap:
        fail(f"--jobs {jobs}: at most {cap} worker processes here ({JOBS_PER_CORE} for each "
             f"of the {cores} cores this process may run on); more would only wait for the "
             f"cores, each holding open files and memory: give --jobs {cores}")


def options(opts: Options) -> Options:
    """``opts`` checked (names, sizes, budget, mm, jobs); a bad one exits 2."""
    check_budget(opts.executions, opts.seconds, opts.max_steps)
    if opts.ray is None or opts.ray == "":  # processes here (a cluster has its own CPUs)
        check_jobs(opts.jobs)
    for k, v in opts.sizes.items():
        check_size(k, v, "--size ")
    try:
        validate(opts)
    except ValueError as e:
        fail(str(e))
    return opts
