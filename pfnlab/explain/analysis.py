"""Everything derived about one finding: its ledger, hang chains and causal core."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

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
    #: for a finding that ends its execution: the properties that no execution violates
    #: and that the executions it ended leave unchecked (:func:`unchecked_after`)
    unchecked: list[str] = field(default_factory=list)

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


def unchecked_after(finding: Finding, result: Any, props: Iterable[str]) -> list[str]:
    """The properties in ``props`` that the executions ``finding`` ended leave unchecked:
    the not established ones (violated nowhere, some execution cut short), when findings
    of ``finding``'s property cut some (``result``: the search's
    :class:`~pfnlab.explore.search.common.Result`, its ``masked_by``)."""
    from pfnlab.explore.search.common import not_established

    if finding.prop not in result.masked_by:
        return []
    return list(not_established(result, tuple(props)))
