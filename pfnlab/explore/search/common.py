"""What every search strategy shares: budgets, statistics, results, re-execution."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pfnlab.explore.findings import Finding
from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution, Footprint
from pfnlab.explore.shared import ALL_FIELDS

#: what interrupts a search (its KeyboardInterrupt): Ctrl-C, unless the command line says
#: it was a signal (``pfnlab check`` under ``timeout``: SIGTERM); the coverage text names it
INTERRUPTED_BY = ["Ctrl-C"]
#: set by :func:`request_stop`: every search of this process stops at its next look at
#: its clock, as an interrupted one (a swarm member's way to be interrupted)
_STOP = [False]


def request_stop() -> None:
    """Ask the searches of this process to stop between two steps, as if interrupted (a
    signal handler may call it: it only sets a flag). Unlike a KeyboardInterrupt raised
    at an arbitrary point, it can never land outside a search's own handling, so what
    the search covered is always reported."""
    _STOP[0] = True


@dataclass(frozen=True)
class Budget:
    """Limits on one search. ``None`` means unlimited.

    ``executions`` counts executions (complete, blocked, pruned or cut by a finding);
    ``seconds`` is wall time; ``max_steps`` bounds one execution (longer is a finding).
    """

    executions: int | None = None
    seconds: float | None = None
    max_steps: int = 10_000

    def __post_init__(self) -> None:
        if self.executions is not None and self.executions < 1:
            raise ValueError("an execution budget must be at least 1")
        if self.seconds is not None and not (0 < self.seconds < math.inf):
            # nan compares false with everything: it must not mean "no limit"
            raise ValueError(f"a time budget must be a positive number of seconds, not "
                             f"{self.seconds!r}; leave it out for no limit")


@dataclass
class Stats:
    """Per-run statistics."""

    executions: int = 0
    complete: int = 0          # every thread finished
    pruned: int = 0            # cut at a state explored before (state caching)
    sleep_blocked: int = 0     # cut because every enabled thread was asleep (DPOR)
    hangs: int = 0
    findings: int = 0          # executions that ended in a finding
    states: int = 0            # distinct states (when cached)
    steps: int = 0             # scheduling steps run, including re-execution of prefixes
    memoised: int = 0          # of them, applied from the step memo (stepmemo.py)
    seconds: float = 0.0
    max_depth: int = 0
    caching: bool = False
    rounds: int = 1            # DPOR runs until the fields checks read are a fixpoint
    #: a parallel search's workers and subtrees, for the progress display (not in JSON)
    workers: str = field(default="", repr=False)

    @property
    def steps_per_second(self) -> float:
        """Scheduling steps per wall-clock second."""
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict of the statistics."""
        d = dict(self.__dict__)
        d.pop("workers", None)
        d["steps_per_second"] = round(self.steps_per_second, 1)
        d["seconds"] = round(self.seconds, 4)
        return d


@dataclass
class Result:
    """The outcome of one search: findings, what was covered, and statistics.

    ``coverage`` says exactly what the search covered ("exhaustive: …", "all schedules
    with ≤ 2 preemptions", "500 random executions (seed 1)", or where a budget cut it).
    ``exhaustive`` is True only when every interleaving (up to equivalence) was covered.
    """

    program: str
    strategy: str
    findings: list[Finding]
    coverage: str
    exhaustive: bool
    stats: Stats
    goals_reached: list[str] = field(default_factory=list)
    goals_missed: list[str] = field(default_factory=list)
    final_states: set[Any] = field(default_factory=set)
    violations: set[tuple[str, str, str]] = field(default_factory=set)
    #: executions cut short by a halting finding, by that finding's property: a property
    #: violated nowhere is still unchecked in the rest of each of them ("not established")
    masked_by: dict[str, int] = field(default_factory=dict)
    #: Ctrl-C stopped the search (the coverage text says so too)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """No finding."""
        return not self.findings

    def finding(self, prop: str) -> Finding | None:
        """The first finding about property ``prop``, if any."""
        for f in self.findings:
            if f.prop == prop:
                return f
        return None


ProgressFn = Callable[[Stats, float], None]
_PROGRESS: list[ProgressFn | None] = [None]


@contextmanager
def reporting(progress: ProgressFn | None) -> Iterator[None]:
    """Within this block, searches call ``progress(stats, elapsed)`` about 5 times a second."""
    prev = _PROGRESS[0]
    _PROGRESS[0] = progress
    try:
        yield
    finally:
        _PROGRESS[0] = prev


class Clock:
    """Wall time and execution budget bookkeeping; progress reports; Ctrl-C."""

    def __init__(self, budget: Budget, program: Program | None = None) -> None:
        self.budget = budget
        #: a stable field of ``program`` was promoted (stable.py): the search must start
        #: again with it as a scheduling point; ``out()`` says so to end the current round
        self.program = program
        self.restart = False
        self.promotions = len(program.knowledge) if program is not None else 0
        self.start = time.perf_counter()
        self.progress = _PROGRESS[0]
        self.last = self.start
        self.interrupted = False
        self.earlier = 0  # executions of earlier rounds of the same search (DPOR)

    def elapsed(self) -> float:
        """Seconds since the search started."""
        return time.perf_counter() - self.start

    def promoted_since(self) -> bool:
        """Whether a stable field was promoted since this clock (or ``restarted()``)."""
        return self.program is not None and len(self.program.knowledge) != self.promotions

    def restarted(self) -> None:
        """The search starts again with the promotions made so far."""
        self.restart = False
        if self.program is not None:
            self.promotions = len(self.program.knowledge)

    def out(self, stats: Stats) -> bool:
        """Whether the budget is used up, the search was asked to stop
        (:func:`request_stop`) or must restart (a promotion); and report progress now
        and then."""
        if _STOP[0]:
            self.interrupted = True
            return True
        if self.promoted_since():
            self.restart = True
            return True
        if self.progress is not None:
            now = time.perf_counter()
            if now - self.last >= 0.2:
                self.last = now
                stats.seconds = now - self.start
                self.progress(stats, stats.seconds)
        b = self.budget
        if b.executions is not None and stats.executions + self.earlier >= b.executions:
            return True
        return b.seconds is not None and self.elapsed() >= b.seconds

    def spent(self) -> bool:
        """Whether the budget is used up by the rounds so far (no round could run)."""
        b = self.budget
        return (b.seconds is not None and self.elapsed() >= b.seconds) or (
            b.executions is not None and self.earlier >= b.executions)

    def cut(self, stats: Stats) -> str:
        """The coverage text of a search that a budget or Ctrl-C stopped."""
        why = f"interrupted ({INTERRUPTED_BY[0]})" if self.interrupted else "budget reached"
        n = stats.executions + self.earlier
        return (f"{why} after {n} executions ({self.elapsed():.1f} s): "
                "partial, no claim beyond them")


def ended(ex: Execution, stop_first: bool) -> bool:
    """Whether a search stops stepping ``ex``: a halting finding, every thread finished, or
    (when the search stops at its first finding) a noted finding."""
    return ex.finding is not None or ex.finished or (stop_first and bool(ex.noted))


def masked(res: Result, prop: str) -> str:
    """Why ``prop``, violated nowhere in ``res``, is not established ("" if it is not
    masked): the executions that halting findings of other properties cut short."""
    by = {p: n for p, n in res.masked_by.items() if p != prop}
    if not by:
        return ""
    parts = [f"{p} in {n} execution{'s' if n != 1 else ''}" for p, n in sorted(by.items())]
    return "masked by " + ", ".join(parts)


def not_established(res: Result, props: Iterable[str]) -> dict[str, str]:
    """Of ``props``, those violated nowhere in ``res`` but masked (see :func:`masked`)."""
    found = {f.prop for f in res.findings}
    out = {}
    for p in props:
        if p not in found and (why := masked(res, p)):
            out[p] = why
    return out


#: the sleep footprint of a step whose finding cut its execution short: every step wakes
#: it (:func:`wakes`; the other threads never ran after it, so no sibling's subtree covers
#: them running before it, however independent their footprints: SourceDpor._loop). Its object
#: index is no real or pseudo object's.
CUT_SHORT: Footprint = ((-1_000_000, ALL_FIELDS, True),)


def wakes(asleep: Footprint, fp: Footprint) -> bool:
    """Whether a step with footprint ``fp`` wakes a thread asleep with footprint ``asleep``
    (its next step): they conflict, or the sleeper's step cut its execution short
    (:data:`CUT_SHORT`: every step wakes it)."""
    return asleep == CUT_SHORT or dependent(asleep, fp)


def dependent(a: Footprint, b: Footprint) -> bool:
    """Two steps of different threads conflict: same field of one object, one writes."""
    for i1, f1, w1 in a:
        for i2, f2, w2 in b:
            if i1 == i2 and (w1 or w2) and (f1 in (f2, ALL_FIELDS) or f2 == ALL_FIELDS):
                return True
    return False


def replay_tids(
    program: Program,
    tids: list[int],
    *,
    trace: bool = False,
    checks: bool = False,
    goals: set[str] | None = None,
    max_steps: int = 10_000,
    visible: set[tuple[int, str]] | None = None,
    observed: set[tuple[int, str]] | None = None,
    snapshots: bool = False,
    memo: bool = False,
    footprints: list[Footprint] | None = None,
) -> Execution:
    """Re-execute ``program`` from its initial state along ``tids`` (``snapshots``: keep
    the undo log that checkpoints need, see snapshot.py; ``memo``: with it, memoise step
    outcomes, see stepmemo.py; ``footprints`` gets each step's)."""
    ex = Execution(program, trace=trace, check_invariants=checks or trace, goals_reached=goals,
                   max_steps=max_steps, visible=visible, observed=observed,
                   snapshots=snapshots, memo=memo)
    for tid in tids:
        fp = ex.step(tid)
        if footprints is not None:
            footprints.append(fp)
    if not (checks or trace):
        ex.enable_checks()
    return ex


def final_state(ex: Execution) -> tuple[Any, ...]:
    """A canonical value of the whole shared state (for differential tests)."""
    out = []
    for obj in ex.objects:
        d = obj.__dict__
        out.append((d["_name"], d["_freed"] is not None, tuple(obj.fields().items())))
    return tuple(out)


class Run:
    """The bookkeeping every strategy shares: statistics, goals, distinct findings."""

    def __init__(self, program: Program, budget: Budget) -> None:
        self.program = program
        self.budget = budget
        self.clock = Clock(budget, program)
        self.stats = Stats()
        self.goals: set[str] = set()
        self.goal_names: list[str] = []
        self.findings: dict[tuple[str, str], Finding] = {}
        self.final_states: set[Any] = set()
        self.violations: set[tuple[str, str, str]] = set()
        #: executions cut by a halting finding, by its property: the properties not yet
        #: violated in them are unchecked in the rest of those executions (runtime/checks.py)
        self.masked_by: dict[str, int] = {}

    def execution(self, tids: list[int], **kw: Any) -> Execution:
        """A re-execution of ``tids`` sharing this run's goals and step limit."""
        ex = replay_tids(self.program, tids, goals=self.goals, max_steps=self.budget.max_steps,
                         **kw)
        self.goal_names = [g.name for g in ex.instance.goals]
        return ex

    def leaf(self, ex: Execution, *, collect: bool = False) -> Finding | None:
        """Count an execution that ended (complete, hang or finding); returns its first
        finding not seen before (noted ones included)."""
        st = self.stats
        st.executions += 1
        if ex.finished:  # a final state, whether or not a final check failed there
            st.complete += 1
            if collect:
                self.final_states.add(final_state(ex))
        if not ex.noted and ex.finding is None:
            return None
        st.findings += 1
        f = ex.finding
        if f is not None:
            if f.kind == "hang":
                st.hangs += 1
            if ex.cut_short():
                self.masked_by[f.prop] = self.masked_by.get(f.prop, 0) + 1
        return self.absorb(ex, collect=collect)

    def absorb(self, ex: Execution, *, collect: bool = False) -> Finding | None:
        """Register the findings ``ex`` has shown so far (an execution the search cuts at a
        visited state or a sleep set has shown its noted ones); returns the first new one."""
        new: Finding | None = None
        for f in ex.findings():
            if collect:
                self.violations.add((f.kind, f.prop, f.message))
            if f.key not in self.findings:
                self.findings[f.key] = f
                new = new or f
        return new

    def result(self, strategy: str, coverage: str, exhaustive: bool) -> Result:
        """The Result of this run."""
        self.stats.seconds = self.clock.elapsed()
        return Result(
            program=self.program.name,
            strategy=strategy,
            findings=list(self.findings.values()),
            coverage=coverage,
            exhaustive=exhaustive,
            stats=self.stats,
            goals_reached=[g for g in self.goal_names if g in self.goals],
            goals_missed=[g for g in self.goal_names if g not in self.goals],
            final_states=self.final_states,
            violations=self.violations,
            masked_by=dict(self.masked_by),
            interrupted=self.clock.interrupted,
        )
