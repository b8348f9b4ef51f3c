"""Run the checker for every claim of the thread and derive each verdict from its results.

Nothing here is a verdict written by hand: a claim's verdict is :func:`decide` applied to
the outcomes of its tests, and each outcome is read from a :class:`~pfnlab.matrix.Cell`
computed by :func:`~pfnlab.matrix.run_cell` during this run. Key trace lines come from the
minimal trace of a finding found by :func:`pfnlab.pipeline.check` during this run. Runs
shared by several claims are made once per :class:`Runner`; a probe (thread/probes.py) is
checked as a design of its own, never registered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pfnlab import pipeline
from pfnlab.explore.findings import HANG, Finding, TraceStep
from pfnlab.explore.search import Budget
from pfnlab.kernel.calls import KernelCall
from pfnlab.kernel.variant import Variant
from pfnlab.matrix import HOLDS, NA, VIOLATED, Cell, Options, Verdict, run_cell
from pfnlab.thread.claims import CLAIMS, Claim, TraceSpec
from pfnlab.thread.claims import Test as ClaimTest
from pfnlab.thread.probes import PROBES

SUPPORTED = "supported"
REFUTED = "refuted"
PARTLY = "partly"
NOT_TESTABLE = "not testable by the model yet"
NOT_COVERED = "not decided (search budget)"

MET, UNMET, UNKNOWN = "met", "unmet", "unknown"

#: seconds each search may take; the exhaustive searches the claims need take far less
SECONDS = 20.0
#: at most this many key lines per quoted trace
MAX_KEY_LINES = 12

#: called with a line saying what runs now (see :func:`reporting_runs`)
_PROGRESS: list[Callable[[str], None] | None] = [None]


@contextmanager
def reporting_runs(progress: Callable[[str], None] | None) -> Iterator[None]:
    """Within this block, :func:`run_thread` calls ``progress(line)`` before each claim and
    each search ("claim 3/17 dan-racy: v5.4 / remapped-vs-unbind"); it may raise to stop
    the run (Ctrl-C)."""
    prev = _PROGRESS[0]
    _PROGRESS[0] = progress
    try:
        yield
    finally:
        _PROGRESS[0] = prev


def _note(line: str) -> None:
    fn = _PROGRESS[0]
    if fn is not None:
        fn(line)


@dataclass
class Outcome:
    """What the checker said for one test, and whether the claim's expectation is met."""

    test: ClaimTest
    status: str                      # met, unmet, unknown
    got: dict[str, Verdict]
    executions: int
    exhaustive: bool

    def violated(self) -> list[str]:
        """The tested properties the checker found violated."""
        return [p for p in self.test.props if self.got[p].verdict == VIOLATED]


@dataclass
class KeyLine:
    """One step of a trace worth quoting."""

    index: int
    thread: str
    where: str
    what: str


@dataclass
class Evidence:
    """The minimal trace of the finding a claim quotes (``found`` False if none)."""

    spec: TraceSpec
    found: bool
    message: str = ""
    kind: str = ""
    steps: int = 0
    preemptions: int = 0
    lines: list[KeyLine] = field(default_factory=list)


@dataclass
class ClaimResult:
    """A claim, the outcomes of its tests, the verdict derived from them, its traces."""

    claim: Claim
    verdict: str
    outcomes: list[Outcome]
    evidence: list[Evidence]


@dataclass
class Report:
    """The whole thread report."""

    results: list[ClaimResult]
    seconds: float
    cells: int


def expectation(test: ClaimTest, got: dict[str, Verdict]) -> str:
    """``met``, ``unmet`` or ``unknown``: the test's expectation rule against verdicts."""
    verdicts = [got[p].verdict for p in test.props]
    if test.expect == VIOLATED:
        if VIOLATED in verdicts:
            return MET
        return UNMET if all(v == HOLDS for v in verdicts) else UNKNOWN
    if VIOLATED in verdicts:
        return UNMET
    return MET if all(v == HOLDS for v in verdicts) else UNKNOWN


def decide(claim: Claim, statuses: list[str]) -> str:
    """A claim's verdict from the statuses of its tests (in the order of ``claim.tests``).

    No tests: not testable. An essential expectation unmet: refuted. Otherwise supported
    if every expectation is met, refuted if none is, partly if some are; undecided
    (budget) if nothing could be decided.
    """
    if not claim.tests:
        return NOT_TESTABLE
    if any(s == UNMET and t.essential for t, s in zip(claim.tests, statuses, strict=True)):
        return REFUTED
    met, unmet = statuses.count(MET), statuses.count(UNMET)
    if met == 0 and unmet == 0:
        return NOT_COVERED
    if unmet == 0 and met == len(statuses):
        return SUPPORTED
    if met == 0:
        return REFUTED
    return PARTLY


class Runner:
    """Runs cells and minimal findings once each, for every claim that needs them."""

    def __init__(self, seconds: float = SECONDS) -> None:
        self.seconds = seconds
        self.cells: dict[tuple[str, str], Cell] = {}
        self.findings: dict[tuple[str, str], list[Finding]] = {}

    def cell(self, variant: str, scenario: str) -> Cell:
        """The checker's verdicts for ``variant`` in ``scenario`` (cached)."""
        key = (variant, scenario)
        if key not in self.cells:
            _note(f"{variant} / {scenario}")
            self.cells[key] = run_cell(_design(variant), scenario,
                                       Options([variant], [scenario], seconds=self.seconds))
        return self.cells[key]

    def finding(self, variant: str, scenario: str, prop: str) -> Finding | None:
        """The minimal finding for ``prop`` in ``variant``/``scenario`` (None if none)."""
        key = (variant, scenario)
        if key not in self.findings:
            _note(f"{variant} / {scenario} (minimal traces)")
            done = pipeline.check(_design(variant), scenario,
                                  pipeline.Search(budget=Budget(seconds=self.seconds)))
            self.findings[key] = done.result.findings
        return next((f for f in self.findings[key] if f.prop == prop), None)


def _design(name: str) -> str | Variant:
    """A registered variant by its name; a probe, which is not registered, as itself."""
    return PROBES.get(name, name)


def _fn(st: TraceStep) -> str:
    return " > ".join(st.where[-3:]) if st.where else st.thread


def _what(st: TraceStep, key: tuple[str, ...]) -> str:
    if st.action == "wait":
        what = f"wait: {st.field}" + (" (not yet)" if st.failed_attempt else "")
    elif st.action in ("lock", "unlock", "free"):
        what = f"{st.action} {st.obj}"
    elif st.action == "read":
        what = f"{st.obj}.{st.field} = {_short(st.before)}"
    else:
        what = f"{st.obj}.{st.field} {_short(st.before)} -> {_short(st.after)}"
    notes = [str(n) for n in st.notes if _keep_note(n, key)]
    if notes:
        what += " [" + "; ".join(notes) + "]"
    return what


def _short(v: object) -> str:
    if isinstance(v, tuple) and len(v) > 2:
        return "(" + ", ".join(str(x) for x in v[:2]) + ", ...)"
    return repr(v) if isinstance(v, str) else str(v)


def _keep_note(note: object, key: tuple[str, ...]) -> bool:
    """Whether a note says what a KVM or key kernel function returned."""
    fn = note.name if isinstance(note, KernelCall) else str(note).split("(", 1)[0]
    return fn.startswith("kvm_") or fn in key


def key_lines(finding: Finding, key: tuple[str, ...]) -> list[KeyLine]:
    """The steps of ``finding``'s trace that matter for a claim.

    A step matters if one of the ``key`` kernel functions is among its three innermost
    frames and it writes, locks, waits or frees, or it reads inside a key function itself,
    or what it read decided a KVM predicate (``kvm_is_reserved_pfn(0x104) = True``). The
    violating step (the last one) is always included unless the finding is a hang (there
    the last step is incidental; the message names the waits).
    """
    trace = finding.trace
    chosen: list[TraceStep] = []
    for i, st in enumerate(trace):
        notes = st.notes
        inner = st.where[-3:]
        last = i == len(trace) - 1 and finding.kind != HANG
        relevant = any(k in inner for k in key) and (
            st.action != "read"
            or (bool(st.where) and st.where[-1] in key)
            or any(_keep_note(n, key) for n in notes)
        )
        if last or relevant:
            chosen.append(st)
    if len(chosen) > MAX_KEY_LINES:
        head = MAX_KEY_LINES // 2
        chosen = chosen[:head] + chosen[-(MAX_KEY_LINES - head):]
    return [KeyLine(st.index, st.thread, _fn(st), _what(st, key)) for st in chosen]


def run_claim(claim: Claim, runner: Runner) -> ClaimResult:
    """Run ``claim``'s tests and quoted findings; derive its verdict."""
    outcomes = []
    for t in claim.tests:
        c = runner.cell(t.variant, t.scenario)
        got = {p: c.verdicts[p] for p in t.props}
        if any(v.verdict == NA for v in got.values()):
            raise ValueError(f"claim {claim.id!r}: {t.scenario} does not check all of "
                             f"{', '.join(t.props)}")
        outcomes.append(Outcome(t, expectation(t, got), got, c.executions, c.exhaustive))
    verdict = decide(claim, [o.status for o in outcomes])
    evidence = []
    for spec in claim.traces:
        f = runner.finding(spec.variant, spec.scenario, spec.prop)
        if f is None:
            evidence.append(Evidence(spec, False))
            continue
        evidence.append(Evidence(spec, True, f.message, f.kind, len(f.trace),
                                 f.preemptions, key_lines(f, spec.key)))
    return ClaimResult(claim, verdict, outcomes, evidence)


def run_thread(claims: tuple[Claim, ...] = CLAIMS, seconds: float = SECONDS) -> Report:
    """Every claim, in thread order, through the checker."""
    t0 = time.perf_counter()
    runner = Runner(seconds)
    results = []
    for n, c in enumerate(claims, 1):
        _note(f"claim {n}/{len(claims)} {c.id}")
        results.append(run_claim(c, runner))
    return Report(results, time.perf_counter() - t0, len(runner.cells))
