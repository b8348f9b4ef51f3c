"""``--swarm N`` and ``--seed S``: a swarm of diversified searches in place of one search
(explore/search/swarm.py), checked before any work."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Annotated

import typer

from pfnlab.cli.common import check_jobs
from pfnlab.cli.errors import fail
from pfnlab.explore.search.parallel import default_workers
from pfnlab.explore.search.swarm import FAMILY, Swarm, plan
from pfnlab.matrix import Options

SwarmOpt = Annotated[int | None, typer.Option(
    "--swarm", metavar="N", help="Bug hunting: N diversified searches (random walks, PCT, "
    "preemption-bounded searches with their own seeds, depths, bounds and thread orders) "
    "on --jobs processes (or Ray tasks with --ray); --executions counts each member's "
    "executions (default 1,000), --seconds bounds the whole swarm. It reports what each "
    "covered and never says a property holds (exit 3 without a finding).",
    show_default=False)]
SeedOpt = Annotated[int | None, typer.Option(
    "--seed", help="The seed of --swarm (every member's configuration and seed is drawn "
    "from it; default: a fresh one, printed) or of --strategy random/pct (default 0).",
    show_default=False)]

#: the strategies that are not a sample or a bound: refused in a swarm
EXHAUSTIVE_HINT = ("a swarm's members are random, pct and bounded searches (each "
                   "different); an exhaustive strategy would search the same executions in "
                   "every member")


def check_seed(seed: int | None, strategy: str, swarm: int | None) -> None:
    """Refuse ``--seed`` where nothing draws from it."""
    if seed is not None and swarm is None and strategy not in ("random", "pct"):
        fail(f"--seed {seed}: only --swarm and --strategy random or pct draw from a seed; "
             f"--strategy {strategy} does not")
    if seed is not None and seed < 0:
        fail(f"--seed {seed}: a seed is a whole number from 0")


def swarm_strategy(n: int, strategy: str | None, seed: int | None, jobs: int | None,
                   ray: str | None, traced: bool, executions: int | None) -> Swarm:
    """The swarm of ``--swarm n`` (every member ``strategy`` when given), planned from
    ``seed`` (None: a fresh one), on ``jobs`` processes (None: this process's cores), or
    with ``ray`` on Ray tasks (connected here: a usage error when Ray cannot start); a
    usage error for what a swarm cannot take."""
    if n < 1:
        fail(f"--swarm {n}: a swarm has at least 1 member; give e.g. --swarm 8")
    if strategy is not None and strategy not in FAMILY:
        fail(f"--swarm with --strategy {strategy}: {EXHAUSTIVE_HINT}; leave out --strategy "
             f"(members take {', '.join(FAMILY)} in turn) or give one of them")
    if traced:
        fail("--unreached-lines traces this process's lines, and a swarm runs its members "
             "in processes of their own: leave out --swarm (or --unreached-lines)")
    if jobs is not None and jobs < 1:
        fail(f"--jobs {jobs}: give at least 1")
    if jobs is not None and ray in (None, "local"):
        check_jobs(jobs)
    address = None if ray is None else ("" if ray == "local" else ray)
    workers = jobs or default_workers()
    if address is not None:
        from pfnlab.explore.search.swarm_ray import ray_workers

        try:
            workers = ray_workers(jobs, address or None)
        except RuntimeError as e:
            fail(f"--ray {ray}: {e}")
        except Exception as e:  # Ray could not start or reach the cluster
            fail(f"--ray {ray}: Ray could not start: {type(e).__name__}: {e}")
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    family = (strategy,) if strategy is not None else FAMILY
    return Swarm(plan(n, seed, family), seed, workers, executions or 1000, address)


def swarm_cells(opts: Options, n: int | None, seed: int | None, jobs: int | None,
                ray: str | None) -> Options:
    """``opts`` of a matrix or sweep whose cells are each a swarm of ``n`` members (None:
    as they are): checked as ``check --swarm`` checks them, the seed drawn if not given,
    the workers counted. ``--strategy dpor``, the default, lets the members take the
    strategies of a swarm in turn."""
    check_seed(seed, opts.strategy, n)
    if n is None:
        return opts
    given = None if opts.strategy == "dpor" else opts.strategy
    sw = swarm_strategy(n, given, seed, jobs, ray, False, opts.executions)
    return replace(opts, swarm=n, seed=sw.seed, jobs=sw.workers, strategy=given or "swarm")
