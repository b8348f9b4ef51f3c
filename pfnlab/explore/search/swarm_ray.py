"""A swarm's members as Ray tasks (swarm.py; ``--swarm N --ray [ADDRESS]``): on a local Ray
instance or an existing cluster, at most ``workers`` at once (the cluster's CPUs unless
fewer are asked for), so that each member gets its share of a time budget.

Each task gets the program from the object store (a copy of its own: a member's facts stay
with it), the member's job and an empty side record per one active here (collect.py), and
sends back what swarm_workers.py's processes send. Ray runs no task again (a member that
dies is reported as such). Ctrl-C cancels the tasks running: what they covered is lost
(they are reported as stopped), unlike local processes, which send back what they covered.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pfnlab.explore.collect import active, fresh_records, merge_records
from pfnlab.explore.program import Program
from pfnlab.explore.search.parallel.ray_cluster import ray_init
from pfnlab.explore.search.swarm_workers import (
    FIRST_NOT_RUN,
    FIRST_STOPPED,
    NO_TIME,
    SLACK,
    TICK,
    Job,
    Outcome,
    Ran,
    run_job,
    timed,
)


def _task(program: Program, job: Job, records: tuple[Any, ...]) -> tuple[Any, ...]:
    """A member as a Ray task."""
    res = run_job(program, job, records)
    return res, program.knowledge.all(), records


def ray_workers(workers: int | None, address: str | None) -> int:
    """Connect to Ray (a local instance with ``workers`` CPUs, or the cluster at
    ``address``) and return how many members run at once: ``workers``, at most the
    cluster's CPUs. RuntimeError when Ray is missing or the address unreachable."""
    ray = ray_init(workers, address)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(workers, cpus) if workers else cpus)


def run_members_ray(program: Program, jobs: list[Job], workers: int, address: str | None,
                    *, deadline: float | None = None, share: float | None = None,
                    stop_first: bool = False,
                    tick: Callable[[list[Outcome]], None] | None = None) -> Ran:
    """:func:`~pfnlab.explore.search.swarm_workers.run_members` on Ray."""
    ray = ray_init(workers, address)
    from ray import cloudpickle

    for name, mod in list(sys.modules.items()):  # model files travel by value
        if name.startswith("pfnlab_model_") and mod is not None:
            cloudpickle.register_pickle_by_value(mod)
    remote = ray.remote(num_cpus=1, max_retries=0)(_task)
    program_ref = ray.put(program)
    todo = deque(jobs)
    running: dict[Any, Job] = {}
    ran = Ran()
    last = time.perf_counter()

    def stop(status: str) -> None:
        for ref, job in running.items():
            ray.cancel(ref, force=True)
            ran.outcomes.append(Outcome(job.member, None, status=status))
        running.clear()

    try:
        while todo or running:
            while todo and len(running) < workers and not ran.stopped:
                job = todo.popleft()
                started = timed(job, share, deadline)
                if started is None:
                    ran.outcomes.append(Outcome(job.member, None, status=NO_TIME))
                    continue
                running[remote.remote(program_ref, started, fresh_records())] = started
            done, _ = ray.wait(list(running), num_returns=1, timeout=TICK)
            for ref in done:
                job = running.pop(ref)
                try:
                    res, facts, records = ray.get(ref)
                except ray.exceptions.RayTaskError as e:  # the model raised
                    raise e.as_instanceof_cause() from None
                except Exception as e:  # the worker died
                    ran.outcomes.append(Outcome(job.member, None, status=(
                        f"died: {type(e).__name__}")))
                    continue
                merge_records(records, active())
                ran.outcomes.append(Outcome(job.member, res, frozenset(facts)))
                ran.stopped = ran.stopped or (stop_first and bool(res.findings))
            if deadline is not None and time.perf_counter() > deadline + SLACK:
                stop("stopped: still running when the time budget ran out")
            if ran.stopped:
                stop(FIRST_STOPPED)
                ran.outcomes += [Outcome(j.member, None, status=FIRST_NOT_RUN) for j in todo]
                todo.clear()
            if tick is not None and time.perf_counter() - last >= TICK:
                last = time.perf_counter()
                tick(ran.outcomes)
    except KeyboardInterrupt:
        ran.interrupted = True
        stop("stopped: interrupted")
        ran.outcomes += [Outcome(j.member, None, status="not run: interrupted") for j in todo]
    except BaseException:
        for ref in running:
            ray.cancel(ref, force=True)
        raise
    return ran
