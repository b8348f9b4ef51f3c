"""Where a swarm's members run (swarm.py): each in a process of its own, forked from this
one, at most ``workers`` at once.

A fresh process per member, even with one worker, is what keeps members apart: a search
learns facts about the program it runs (knowledge.py) and warms caches, and a member run
after another in the same process would start from what that one learnt, so the members'
results would depend on which ran where. A forked member inherits the program as it is
when it starts (model files loaded with ``--model`` included), runs its search with the
facts its job names, and sends back its result, the facts it ended with and the side
records (collect.py) it kept. A member that dies (killed, out of memory) is reported as
such; the others go on. Ctrl-C interrupts the members running (SIGUSR1: a member ignores
SIGINT, which is its parent's, and stops its search at the next step, as a budget does) and
waits a moment for what they covered; those not started yet are reported as not run. A
member still running past the swarm's deadline is killed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from pfnlab.explore.collect import active, collecting, fresh_records, merge_records
from pfnlab.explore.program import Program
from pfnlab.explore.search.common import Budget, Result, request_stop
from pfnlab.explore.search.parallel.forking import start_worker, worker_started

if TYPE_CHECKING:
    from pfnlab.explore.search.swarm_plan import Member

#: past the swarm's deadline, a member still running gets this long to stop by itself
#: (a search looks at its clock between steps) before it is killed
SLACK = 1.0
#: how often (seconds) the progress callback hears of the members finished so far
TICK = 0.2
#: what tells a member's process that the swarm was interrupted: it stops its search
#: as Ctrl-C stops one and sends back what it covered
INTERRUPT = signal.SIGUSR1


@dataclass(frozen=True)
class Job:
    """One run of a member: with ``facts`` learnt before it starts, within ``budget``
    (its ``seconds`` set when it starts, from the swarm's share), random and PCT running
    ``executions`` executions, stopping at the first finding with ``stop_first``."""

    member: Member
    facts: frozenset[str]
    budget: Budget
    executions: int
    stop_first: bool


@dataclass
class Outcome:
    """What a member's run came back with: its search's ``result`` and the ``facts`` it
    ended with, or None and the ``status`` saying why not ("not run: ...", "died: ...")."""

    member: Member
    result: Result | None
    facts: frozenset[str] = frozenset()
    status: str = "ran"


@dataclass
class Ran:
    """The outcomes of a batch of jobs (in the order they finished), whether Ctrl-C
    stopped it, and whether it stopped at a first finding (``stop_first``)."""

    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False
    stopped: bool = False


def _interrupt(signum: int, frame: Any) -> None:
    request_stop()  # the search stops at its next step and reports what it covered


def run_job(program: Program, job: Job, records: tuple[Any, ...]) -> Result:
    """Run ``job``'s member on ``program`` (a copy of its own: the member learns facts
    into it), recording into ``records`` (collect.py)."""
    program.knowledge.learn_all(job.facts)
    with collecting(*records):
        return job.member.strategy_object(job.executions).search(
            program, job.budget, stop_first=job.stop_first)


def timed(job: Job, share: float | None, deadline: float | None) -> Job | None:
    """``job`` with its time budget as it starts now: its ``share`` of the swarm's, cut at
    the swarm's ``deadline``; None when the deadline has passed."""
    now = time.perf_counter()
    if deadline is not None and now >= deadline:
        return None
    secs = [s for s in (share, deadline - now if deadline is not None else None)
            if s is not None]
    if not secs:
        return job
    return replace(job, budget=replace(job.budget, seconds=max(min(secs), 0.01)))


#: the status of a member the time budget left no room for
NO_TIME = "not run: the time budget was used up before it started"
#: the statuses of members stopped because another showed a finding (``stop_first``)
FIRST_STOPPED = "stopped: another member showed a finding first"
FIRST_NOT_RUN = "not run: another member showed a finding first"


def _child(parent: int, program: Program, job: Job, conn: Connection) -> None:
    """A member's process: run the job and send back what came of it."""
    worker_started(parent)
    signal.signal(INTERRUPT, _interrupt)
    try:
        records = fresh_records()
        try:
            res = run_job(program, job, records)
        finally:
            signal.signal(INTERRUPT, signal.SIG_IGN)
        conn.send(("ok", res, program.knowledge.all(), records))
    except BaseException as e:  # the model raised: the parent raises it again
        # (Ctrl-C never reaches a member as KeyboardInterrupt: it ignores SIGINT, and the
        # swarm's INTERRUPT only asks its search to stop, which then sends "ok")
        from pfnlab.explore.search.parallel.workers import sendable

        err = sendable(e) if isinstance(e, Exception) else RuntimeError(repr(e))
        try:
            conn.send(("error", err, None, None))
        except Exception:
            conn.send(("error", RuntimeError(f"{type(e).__name__}: {e}"), None, None))
    finally:
        conn.close()
        os._exit(0)  # not the parent's exit handlers, nor its buffered output


def run_members(program: Program, jobs: list[Job], workers: int, *,
                deadline: float | None = None, share: float | None = None,
                stop_first: bool = False,
                tick: Callable[[list[Outcome]], None] | None = None) -> Ran:
    """Run ``jobs`` on ``workers`` forked processes at once, each within ``share``
    seconds and none past ``deadline`` (``time.perf_counter()`` values); with
    ``stop_first``, stop at the first member that shows a finding. ``tick(outcomes so
    far)`` is called now and then. An exception a member's search raised (a model error)
    is raised here, after the other members are stopped."""
    ctx = mp.get_context("fork")
    todo = deque(jobs)
    running: dict[Connection, tuple[Job, Any]] = {}
    ran = Ran()
    last = time.perf_counter()
    try:
        while todo or running:
            while todo and len(running) < workers and not ran.stopped:
                job = todo.popleft()
                started = timed(job, share, deadline)
                if started is None:
                    ran.outcomes.append(Outcome(job.member, None, status=NO_TIME))
                    continue
                job = started
                recv, proc = start_worker(ctx, _child, (os.getpid(), program, job), workers)
                running[recv] = (job, proc)
            for ready in wait(list(running), timeout=TICK):
                conn = next(c for c in running if c is ready)
                job, proc = running.pop(conn)
                ran.outcomes.append(_received(conn, job, proc))
                if stop_first and (res := ran.outcomes[-1].result) is not None \
                        and res.findings:
                    ran.stopped = True
            if deadline is not None and time.perf_counter() > deadline + SLACK:
                for conn, (job, proc) in list(running.items()):
                    _stop(conn, proc)
                    ran.outcomes.append(Outcome(job.member, None, status=(
                        "stopped: still running when the time budget ran out")))
                running.clear()
            if ran.stopped:
                for conn, (job, proc) in list(running.items()):
                    _stop(conn, proc)
                    ran.outcomes.append(Outcome(job.member, None, status=FIRST_STOPPED))
                running.clear()
                for job in todo:
                    ran.outcomes.append(Outcome(job.member, None, status=FIRST_NOT_RUN))
                todo.clear()
            if tick is not None and time.perf_counter() - last >= TICK:
                last = time.perf_counter()
                tick(ran.outcomes)
    except KeyboardInterrupt:
        ran.interrupted = True
        ran.outcomes += _interrupted(running)
        for job in todo:
            ran.outcomes.append(Outcome(job.member, None, status="not run: interrupted"))
    except BaseException:
        for conn, (_job, proc) in running.items():
            _stop(conn, proc)
        raise
    return ran


def _interrupted(running: dict[Connection, tuple[Job, Any]]) -> list[Outcome]:
    """Interrupt the members ``running`` and gather what they covered (within
    :data:`SLACK` seconds; one that sends nothing by then is killed)."""
    out: list[Outcome] = []
    for _job, proc in running.values():
        if proc.is_alive():
            with suppress(OSError):  # (it ended meanwhile)
                os.kill(proc.pid, INTERRUPT)
    until = time.perf_counter() + SLACK
    while running and (left := until - time.perf_counter()) > 0:
        for ready in wait(list(running), timeout=left):
            conn = next(c for c in running if c is ready)
            job, proc = running.pop(conn)
            try:
                out.append(_received(conn, job, proc))
            except Exception:  # the interrupt hit the model: nothing to report
                out.append(Outcome(job.member, None, status="stopped: interrupted"))
    for conn, (job, proc) in running.items():
        _stop(conn, proc)
        out.append(Outcome(job.member, None, status="stopped: interrupted"))
    return out


def _received(conn: Connection, job: Job, proc: Any) -> Outcome:
    """What member ``job`` sent back (its process is then reaped); an exception it sent
    is raised."""
    try:
        kind, value, facts, records = conn.recv()
    except (EOFError, OSError):
        conn.close()
        proc.join()
        return Outcome(job.member, None, status=(
            f"died (exit status {proc.exitcode}): killed, out of memory, or model code "
            "ending its process"))
    conn.close()
    proc.join()
    if kind == "error":
        raise value
    merge_records(records, active())
    return Outcome(job.member, value, frozenset(facts))


def _stop(conn: Connection, proc: Any) -> None:
    """Kill a member's process and reap it."""
    conn.close()
    if proc.is_alive():
        proc.kill()
    proc.join(timeout=5)
