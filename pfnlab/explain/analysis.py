"""Everything derived about one finding: its ledger, hang chains and causal core."""

from __future__ import annotations

from dataclasses import dataclass

from pfnlab.explain.causal import Causal, causal_core
from pfnlab.explain.hangs import Chain, hang_chains
from pfnlab.explain.ledger import Ledger, build_ledger
from pfnlab.explore.findings import Finding
from pfnlab.explore.program import Program


@dataclass
class Analysis:
    """The derived parts of a finding's report."""

    finding: Finding
    ledger: Ledger
    chains: list[Chain]
    causal: Causal

    def decisive(self) -> set[int]:
        """Steps the short trace shows even when they only read."""
        pair = {s for s in (self.causal.first, self.causal.second) if s is not None}
        return self.ledger.decisive_steps() | pair


def analyse(program: Program, finding: Finding, deadline: float | None = None) -> Analysis:
    """Ledger, hang chains and causal core of ``finding`` (its trace must be recorded); the
    causal core stops at ``deadline`` (a ``time.perf_counter()`` value: the time budget)."""
    led = build_ledger(finding)
    return Analysis(finding, led, hang_chains(finding, led),
                    causal_core(program, finding, deadline=deadline))
