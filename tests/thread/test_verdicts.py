"""Verdicts are computed from the checker's results through each claim's rule."""

from __future__ import annotations

import pytest

from pfnlab.matrix import HOLDS, NOT_COVERED, VIOLATED, Cell, Verdict
from pfnlab.properties import PROPERTIES, REFS_BALANCED, TEARDOWN_TERMINATES
from pfnlab.thread import run as thread_run
from pfnlab.thread.claims import CLAIMS, Claim, Test
from pfnlab.thread.run import (
    MET,
    NOT_TESTABLE,
    PARTLY,
    REFUTED,
    SUPPORTED,
    UNKNOWN,
    UNMET,
    Report,
    Runner,
    decide,
    run_claim,
)

BY_ID = {c.id: c for c in CLAIMS}


def _claim(*essential: bool) -> Claim:
    tests = tuple(Test("v5.4", "devdax-unbind", (REFS_BALANCED,), HOLDS, "x", essential=e)
                  for e in essential)
    return Claim("c", "who", "d", "<m>", "q", "q?", tests=tests)


def test_decide_rule() -> None:
    assert decide(Claim("c", "w", "d", "<m>", "q", "q?", untestable="why"), []) \
        == NOT_TESTABLE
    assert decide(_claim(False, False), [MET, MET]) == SUPPORTED
    assert decide(_claim(False, False), [MET, UNMET]) == PARTLY
    assert decide(_claim(False, False), [UNMET, UNMET]) == REFUTED
    assert decide(_claim(True, False), [UNMET, MET]) == REFUTED
    assert decide(_claim(False, False), [UNKNOWN, UNKNOWN]) == thread_run.NOT_COVERED
    assert decide(_claim(False, False), [MET, UNKNOWN]) == PARTLY


def _cell(variant: str, scenario: str, verdict: dict[str, str]) -> Cell:
    verdicts = {p: Verdict(verdict.get(p, HOLDS)) for p in PROPERTIES}
    return Cell(variant, scenario, {}, verdicts, "exhaustive", True, 1, 1, 1, 0.0)


class FakeRunner(Runner):
    """Answers every cell with the given verdicts, and no findings."""

    def __init__(self, verdicts: dict[tuple[str, str], dict[str, str]]) -> None:
        super().__init__()
        self.answers = verdicts

    def cell(self, variant: str, scenario: str) -> Cell:
        return _cell(variant, scenario, self.answers.get((variant, scenario), {}))

    def finding(self, variant: str, scenario: str, prop: str) -> None:
        return None


def test_hang_verdict_follows_the_checker() -> None:
    hang = BY_ID["hang"]
    hung = {("v5.3", "devdax-unbind"): {TEARDOWN_TERMINATES: VIOLATED,
                                        REFS_BALANCED: VIOLATED},
            ("v5.3", "fsdax-truncate"): {TEARDOWN_TERMINATES: VIOLATED}}
    assert run_claim(hang, FakeRunner(hung)).verdict == SUPPORTED
    # the same claim, had the checker found no hang: refuted (the essential run fails)
    assert run_claim(hang, FakeRunner({})).verdict == REFUTED
    # a search cut by its budget decides nothing
    cut = {k: {p: NOT_COVERED for p in PROPERTIES} for k in
           [("v5.3", "devdax-unbind"), ("v5.3", "fsdax-truncate"), ("v5.4", "devdax-unbind")]}
    assert run_claim(hang, FakeRunner(cut)).verdict == thread_run.NOT_COVERED


def test_real_verdict_changes_when_the_checker_result_changes(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flip one real cell's result: the verdict of the claim that reads it flips too."""
    real = {r.claim.id: r for r in report.results}["david-patch"]
    assert real.outcomes[0].status in (MET, UNMET)
    orig = thread_run.run_cell

    def flipped(variant: str, scenario: str, opts: object) -> Cell:
        c = orig(variant, scenario, opts)  # type: ignore[arg-type]
        if (variant, scenario) == ("hildenbrand", "devdax-unbind"):
            for p in (REFS_BALANCED, TEARDOWN_TERMINATES):
                was = c.verdicts[p].verdict
                c.verdicts[p] = Verdict(HOLDS if was == VIOLATED else VIOLATED)
        return c

    monkeypatch.setattr(thread_run, "run_cell", flipped)
    again = run_claim(BY_ID["david-patch"], Runner())
    assert again.outcomes[0].status != real.outcomes[0].status
    assert real.verdict == REFUTED          # David's patch still leaks and hangs
    assert again.verdict != REFUTED         # ... and with the cells flipped, it would not


def test_every_claim_has_a_verdict(report: Report) -> None:
    assert [r.claim.id for r in report.results] == [c.id for c in CLAIMS]
    for r in report.results:
        if not r.claim.tests:
            assert r.verdict == NOT_TESTABLE
        else:
            assert r.verdict == decide(r.claim, [o.status for o in r.outcomes])
            assert all(o.status in (MET, UNMET, UNKNOWN) for o in r.outcomes)


def test_quoted_traces_come_from_findings(report: Report) -> None:
    """A quoted trace is the finding's minimal trace, or says there was no finding."""
    for r in report.results:
        for e in r.evidence:
            if e.found:
                assert e.lines and e.steps >= max(ln.index for ln in e.lines) + 1
                assert e.message


def test_the_thread_runs_fast_enough(report: Report) -> None:
    assert report.seconds < 60
