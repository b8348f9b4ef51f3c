"""Does a saved finding still reproduce? Each finding of a ``check`` or ``diff`` JSON report
(:mod:`pfnlab.report.jsonout`) has its schedule run again, through :mod:`pfnlab.pipeline`,
on the current model (``pfnlab replay``): the finding reproduces, or the replay says where
the execution diverges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pfnlab import pipeline
from pfnlab.explore.findings import Finding
from pfnlab.explore.runtime import RESUME_LABEL
from pfnlab.explore.schedule import Schedule
from pfnlab.kernel.variant import VARIANTS
from pfnlab.model.scenario import SCENARIOS


@dataclass
class ReplayOutcome:
    """A saved finding replayed against the current model."""

    where: str            # "v5.3 / devdax-unbind: teardown-terminates"
    reproduced: bool
    message: str

    def line(self) -> str:
        """One line of ``pfnlab replay`` output."""
        verdict = "reproduces" if self.reproduced else "DOES NOT reproduce"
        return f"{self.where}: {verdict}: {self.message}"


def replay_saved(variant: str, scenario: str, sizes: dict[str, int],
                 saved: dict[str, Any], mm: str | None = None) -> ReplayOutcome:
    """Replay one saved finding's schedule (strict: labels must match) on host mm ``mm``
    (the report's ``mm``: the one it was checked on)."""
    where = f"{variant} / {scenario}: {saved['property']} ({saved['kind']})"
    if variant not in VARIANTS or scenario not in SCENARIOS:
        return ReplayOutcome(where, False, "the model has no such variant or scenario (a "
                             "model file's? pass it with --model FILE)")
    rr = pipeline.replay(variant, scenario, Schedule.from_json(saved["schedule"]),
                         sizes=pipeline.own_sizes(scenario, sizes), mm=mm,
                         promoted=saved.get("promoted", ()))
    f: Finding | None = rr.find((saved["kind"], saved["property"])) or rr.finding
    if rr.diverged:
        got = f" (the execution ended with {f.kind} {f.prop})" if f is not None else ""
        return ReplayOutcome(where, False, f"diverged at {rr.message}{got}"
                             + _older_steps(rr.message, saved["schedule"]))
    if f is None:
        return ReplayOutcome(where, False,
                             f"replayed all {rr.steps_run} steps without a finding")
    if (f.kind, f.prop) != (saved["kind"], saved["property"]):
        return ReplayOutcome(where, False,
                             f"replayed all {rr.steps_run} steps, but found {f.kind} {f.prop}: "
                             f"{f.message}")
    return ReplayOutcome(where, True, f"{rr.steps_run} steps, {f.message}")


def _older_steps(message: str, schedule: list[dict[str, Any]]) -> str:
    """What to do when a schedule diverges because it was saved before a passing wait became
    a step of its own (docs/reductions.md section 2): such a schedule has no ``continue
    after wait`` steps."""
    if RESUME_LABEL in message and not any(RESUME_LABEL in str(st.get("label", ""))
                                            for st in schedule):
        return ("; the report has no 'continue after wait' steps: it was saved by a pfnlab "
                "from before a passing wait became a step of its own, so its schedules no "
                "longer replay: run the check again for a current report")
    return ""
