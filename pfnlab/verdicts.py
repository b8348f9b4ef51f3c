"""What a check concludes, as data: a cell's verdicts and a patch diff's changes.

The matrix (:mod:`pfnlab.matrix`) and the patch diff (:mod:`pfnlab.patchdiff`) compute
these; the reports (:mod:`pfnlab.report`) render them, knowing nothing of how they were
computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pfnlab.explain.analysis import Analysis

HOLDS, VIOLATED, NA, NOT_COVERED = "holds", "violated", "n/a", "not-covered"
NOT_ESTABLISHED = "not-established"


@dataclass
class Verdict:
    """One property's verdict in one cell."""

    verdict: str
    reason: str = ""


@dataclass
class Cell:
    """The result of checking one variant against one scenario."""

    variant: str
    scenario: str
    sizes: dict[str, int]
    verdicts: dict[str, Verdict]
    coverage: str
    exhaustive: bool
    executions: int
    states: int
    steps: int
    seconds: float
    goals_reached: list[str] = field(default_factory=list)
    goals_missed: list[str] = field(default_factory=list)
    model_errors: list[str] = field(default_factory=list)
    #: the code under review no execution ran (pfnlab.model.reach), as check prints it
    unreached: list[str] = field(default_factory=list)
    #: Ctrl-C cut this cell's search
    cut: bool = False
    #: the host mm it ran on (Options.mm)
    mm: str | None = None

    def violated(self) -> list[str]:
        """Ids of the violated properties, in registry order."""
        return [p for p, v in self.verdicts.items() if v.verdict == VIOLATED]

    def status(self) -> str:
        """``violated``, ``model-error``, ``not-covered``, ``not-established`` or ``holds``
        for the whole cell."""
        if self.model_errors:
            return "model-error"
        if self.violated():
            return VIOLATED
        if any(v.verdict == NOT_COVERED for v in self.verdicts.values()):
            return NOT_COVERED
        if any(v.verdict == NOT_ESTABLISHED for v in self.verdicts.values()):
            return NOT_ESTABLISHED
        return HOLDS


FIXED, BROKEN, BOTH, UNKNOWN = "fixed", "broken", "violated-in-both", "unknown"


@dataclass
class PropDiff:
    """One property that differs (or fails on both sides) in one scenario."""

    prop: str
    change: str
    found_in: str                    # the variant whose trace is shown
    analysis: Analysis | None
    other: str                       # what the schedule does on the other variant
    message_a: str = ""
    message_b: str = ""
    #: why the change is unknown: a search cut by a budget, or the property masked there
    why: str = ""


@dataclass
class ScenarioDiff:
    """The differences in one scenario."""

    scenario: str
    sizes: dict[str, int]
    exhaustive_a: bool
    exhaustive_b: bool
    props: list[PropDiff] = field(default_factory=list)
