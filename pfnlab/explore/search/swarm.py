"""Swarm verification: many diversified searches of one program, for finding bugs at sizes
no exhaustive search reaches (Holzmann, Joshi & Groce, "Swarm verification techniques",
IEEE TSE 2011: SPIN's swarm).

A swarm is N *members*, each one search by a strategy that samples or bounds the
interleavings (random walk, PCT, preemption-bounded search), each configured differently:
its own seed, PCT's bug depth, the preemption bound, the threads' priority order.
:func:`plan` draws all of them from one seed, so a swarm with the same seed runs the same
members (Hypothesis-style: the seed is all a rerun needs). The members share nothing and
run in processes of their own (swarm_workers.py), or as Ray tasks (swarm_ray.py), as many
at once as there are workers.
Their findings are merged (the same kind and property is one finding, kept as the member
with the lowest number found it, whatever the order members finish in), and each member
reports what it covered. A swarm never covers every interleaving: its result is never
exhaustive, so it can find a bug but never show there is none.

Budgets: an execution budget counts each member's executions (random and PCT members run
that many; without any budget, 1,000 each); a time budget bounds the whole swarm: the
members run in its first :data:`SEARCHING` part (the rest is for minimising the findings'
traces), each with an equal share of the workers' time in it (``seconds * workers / N``),
and none past it.

Facts about the program (knowledge.py) change how it is stepped, and a finding's schedule
replays only under the facts it was found with. Every member starts with the facts the
swarm has; when members learnt different ones, all of them are learnt and the members
whose last round ran without some run again (:class:`Swarm`), until every member's last
round ran with the same facts: the merged findings then replay under one set, whatever
the number of workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pfnlab.explore.findings import Finding
from pfnlab.explore.program import Program
from pfnlab.explore.search.common import Budget, Clock, Result, Stats
from pfnlab.explore.search.strategy import SUMMED, Strategy
from pfnlab.explore.search.swarm_plan import BOUNDS, DEPTHS, FAMILY, Member, plan
from pfnlab.explore.search.swarm_workers import Job, Outcome, Ran, run_members

__all__ = ["BOUNDS", "DEPTHS", "FAMILY", "SEARCHING", "Member", "MemberReport", "Swarm",
           "SwarmResult", "plan"]

#: the part of a time budget the members run in (the rest: minimising the findings)
SEARCHING = 0.8


@dataclass
class MemberReport:
    """What one member covered: its coverage text, executions, distinct states (None
    when its search keeps no table of them), steps, seconds, the findings it showed
    (``kind:property``), and how many times it ran (more than once: facts learnt by other
    members; the counts are the last run's)."""

    member: Member
    coverage: str
    executions: int = 0
    states: int | None = None
    steps: int = 0
    seconds: float = 0.0
    findings: list[str] = field(default_factory=list)
    runs: int = 0

    def as_json(self) -> dict[str, Any]:
        """The report as JSON fields."""
        return {**self.member.as_json(), "label": self.member.label,
                "coverage": self.coverage, "executions": self.executions,
                "states": self.states, "steps": self.steps,
                "seconds": round(self.seconds, 3), "findings": self.findings,
                "runs": self.runs}


@dataclass
class SwarmResult(Result):
    """A swarm's result: the merged findings and summed statistics of its members
    (never exhaustive), the ``seed`` it was planned from, and each member's report."""

    seed: int = 0
    members: list[MemberReport] = field(default_factory=list)
    #: wall-clock seconds of the whole swarm (the statistics' ``seconds`` too)
    wall: float = 0.0


class Swarm(Strategy):
    """The ``members`` (see :func:`plan`) run on ``workers`` processes at once (with
    ``ray``, as Ray tasks: "" a local instance, else a cluster's address); random and PCT
    members run ``executions`` executions unless the budget gives a count.

    Of the members that showed a finding, the one with the lowest number whose last run
    had every fact the swarm learnt gives its schedule; only when none had (a time budget
    ran out before they could run again) one that ran with fewer facts does. Such a
    schedule may not replay as it was found, but the minimisation after the search
    (search.explain) looks for the finding afresh under every fact, and its report says
    when no execution showing it could be replayed."""

    name = "swarm"

    def __init__(self, members: list[Member], seed: int, workers: int = 1,
                 executions: int = 1000, ray: str | None = None) -> None:
        if not members:
            raise ValueError("a swarm has at least 1 member")
        if workers < 1:
            raise ValueError(f"a swarm runs on at least 1 worker, not {workers}")
        self.members = members
        self.seed = seed
        self.workers = workers
        self.ray = ray
        self.executions = executions

    @classmethod
    def from_options(cls, **options: Any) -> Swarm:
        """``swarm`` members planned from ``seed`` (default 8 members, seed 0) on
        ``workers`` processes (default 1), each running ``executions``."""
        seed = options.get("seed", 0)
        return cls(plan(options.get("swarm", 8), seed), seed, options.get("workers", 1),
                   options.get("executions", 1000))

    def search(self, program: Program, budget: Budget, *, stop_first: bool) -> SwarmResult:
        """Run every member (module docstring: budgets, facts) and merge their results."""
        start = time.perf_counter()
        deadline = start + budget.seconds * SEARCHING if budget.seconds is not None else None
        per = budget.executions
        if per is None and budget.seconds is None:
            per = self.executions
        count = per if per is not None else 2**62  # random and PCT: until the time is up
        member_budget = Budget(executions=per, max_steps=budget.max_steps)
        outcomes: dict[int, Outcome] = {}
        runs: dict[int, int] = {}
        todo = list(self.members)
        interrupted = stopped = False
        clock = Clock(Budget())  # progress reports only
        while todo and not (interrupted or stopped):
            facts = program.knowledge.all()
            jobs = [Job(m, facts, member_budget, count, stop_first) for m in todo]
            share = None
            if deadline is not None:
                left = deadline - time.perf_counter()
                share = left * min(self.workers, len(todo)) / len(todo)
            ran = self._run(program, jobs, deadline=deadline, share=share,
                            stop_first=stop_first, tick=lambda o: self._tick(clock, o))
            interrupted = ran.interrupted
            stopped = ran.stopped
            for o in ran.outcomes:
                if o.result is not None or o.member.index not in outcomes:
                    outcomes[o.member.index] = o
                if o.result is not None:
                    runs[o.member.index] = runs.get(o.member.index, 0) + 1
                    program.knowledge.learn_all(o.facts)
            final = program.knowledge.all()
            todo = [m for m in self.members if (got := outcomes.get(m.index)) is not None
                    and got.result is not None and got.facts != final]
            if deadline is not None and time.perf_counter() >= deadline:
                break
        return self._merge(program, outcomes, runs, start, interrupted)

    def _run(self, program: Program, jobs: list[Job], **kw: Any) -> Ran:
        """Run ``jobs`` on this swarm's workers (local processes or Ray)."""
        if self.ray is None:
            return run_members(program, jobs, self.workers, **kw)
        from pfnlab.explore.search.swarm_ray import run_members_ray

        return run_members_ray(program, jobs, self.workers, self.ray or None, **kw)

    def _tick(self, clock: Clock, done: list[Outcome]) -> None:
        """Report the progress of the members finished so far."""
        stats = Stats()
        for o in done:
            if o.result is not None:
                stats.executions += o.result.stats.executions
                stats.steps += o.result.stats.steps
        stats.workers = f"{len(done)}/{len(self.members)} swarm members done"
        clock.out(stats)

    def _merge(self, program: Program, outcomes: dict[int, Outcome], runs: dict[int, int],
               start: float, interrupted: bool) -> SwarmResult:
        """One result of every member's (module docstring: which finding is kept)."""
        final = program.knowledge.all()
        findings: dict[tuple[str, str], Finding] = {}
        stats = Stats()
        reports: list[MemberReport] = []
        goals: list[str] = []
        reached: set[str] = set()
        masked_by: dict[str, int] = {}
        violations: set[tuple[str, str, str]] = set()
        stale_keys: set[tuple[str, str]] = set()  # kept from a member with fewer facts
        for m in self.members:
            got = outcomes.get(m.index)
            res = got.result if got is not None else None
            if got is None or res is None:
                why = got.status if got is not None else "not run: the swarm stopped first"
                reports.append(MemberReport(m, why))
                continue
            st = res.stats
            stale = got.facts != final
            coverage = res.coverage
            if stale:  # (the time budget ran out before it could run again)
                coverage += ("; found before facts other members learnt, so its findings "
                             "may not replay")
            reports.append(MemberReport(
                m, coverage, st.executions, st.states if st.caching else None, st.steps,
                st.seconds, [f"{f.kind}:{f.prop}" for f in res.findings], runs.get(m.index, 0)))
            for k in SUMMED:
                setattr(stats, k, getattr(stats, k) + getattr(st, k))
            stats.max_depth = max(stats.max_depth, st.max_depth)
            for f in res.findings:  # (see the class docstring: which one is kept)
                if f.key not in findings or (f.key in stale_keys and not stale):
                    findings[f.key] = f
                    stale_keys.discard(f.key)
                    if stale:
                        stale_keys.add(f.key)
            goals += [g for g in [*res.goals_reached, *res.goals_missed] if g not in goals]
            reached |= set(res.goals_reached)
            for p, n in res.masked_by.items():
                masked_by[p] = masked_by.get(p, 0) + n
            violations |= res.violations
        wall = time.perf_counter() - start
        stats.seconds = wall
        ran = sum(1 for r in reports if r.runs)
        coverage = (f"{ran} of {len(self.members)} swarm searches ran (seed {self.seed}): "
                    f"{stats.executions:,} executions of random, PCT and preemption-bounded "
                    "schedules; no claim beyond them")
        if interrupted:
            coverage = "interrupted: " + coverage
        return SwarmResult(
            program=program.name, strategy=self.name, findings=list(findings.values()),
            coverage=coverage, exhaustive=False, stats=stats,
            goals_reached=[g for g in goals if g in reached],
            goals_missed=[g for g in goals if g not in reached],
            violations=violations, masked_by=masked_by, interrupted=interrupted,
            seed=self.seed, members=reports, wall=wall)
