"""Replay a schedule of thread names and step labels against the current model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pfnlab.explore.findings import Finding, TraceStep
from pfnlab.explore.program import Program
from pfnlab.explore.runtime import Execution
from pfnlab.explore.schedule import Schedule, Step


@dataclass
class ReplayResult:
    """What a replay did: the finding it reproduced (if any), or where it diverged."""

    #: the halting finding where the replay stopped, else the last finding noted on the way
    #: (an execution goes on past a stable invariant or a final check: see runtime/checks.py)
    finding: Finding | None
    trace: list[TraceStep]
    diverged_at: int | None
    message: str
    steps_run: int
    preemptions: int = 0
    #: every object's fields where the replay stopped (see :func:`snapshot`)
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: every finding of the replayed execution, in the order they arose
    findings: list[Finding] = field(default_factory=list)

    def find(self, key: tuple[str, str]) -> Finding | None:
        """The replay's finding of ``key`` = (kind, property), if it showed one."""
        return next((f for f in self.findings if f.key == key), None)

    @property
    def diverged(self) -> bool:
        """Whether the model no longer follows the schedule."""
        return self.diverged_at is not None


def replay(program: Program, schedule: Schedule | list[Step], *, strict: bool = True,
           max_steps: int = 10_000) -> ReplayResult:
    """Run ``schedule`` step by step with tracing on.

    In strict mode the first step whose thread cannot run, or whose label differs from the
    one the model now offers, stops the replay and says where. Otherwise label mismatches are
    noted and the replay follows thread names only.
    """
    ex = Execution(program, trace=True, max_steps=max_steps)
    rr = _replay(ex, schedule, strict)
    rr.state = snapshot(ex)
    rr.findings = ex.findings()
    if rr.finding is None and rr.findings:
        rr.finding = rr.findings[-1]
    if rr.finding is not None:
        rr.finding.state = rr.state
    return rr


def snapshot(ex: Execution) -> dict[str, dict[str, Any]]:
    """Every shared object's fields (ghosts too) by name; ``_freed`` says what freed it."""
    out: dict[str, dict[str, Any]] = {}
    for obj in ex.objects:
        d = obj.__dict__
        out[d["_name"]] = {**obj.fields(), "_freed": d["_freed"]}
    return out


def _replay(ex: Execution, schedule: Schedule | list[Step], strict: bool) -> ReplayResult:
    names = ex.thread_names()
    notes: list[str] = []
    preemptions = 0
    last = -1
    for i, st in enumerate(schedule):
        n = len(ex.trace)  # the step's number as the trace shows it (joined ones count)
        if ex.finding is not None or ex.finished:
            return ReplayResult(ex.finding, ex.trace, i,
                                f"step {n}: the execution already ended before {st}", i,
                                preemptions)
        if st.thread not in names:
            return ReplayResult(None, ex.trace, i,
                                f"step {n}: the model has no thread {st.thread!r} "
                                f"(threads: {', '.join(names)})", i, preemptions)
        tid = names.index(st.thread)
        en = ex.enabled()
        if tid not in en:
            why = "has finished" if ex.threads[tid].op is None else "is blocked"
            return ReplayResult(None, ex.trace, i,
                                f"step {n}: {st.thread} cannot run here: it {why}", i,
                                preemptions)
        offered = ex.label(tid)
        if st.label and offered != st.label:
            msg = (f"step {n}: the schedule says {st.thread} '{st.label}', "
                   f"the model offers '{offered}'")
            if strict:
                return ReplayResult(None, ex.trace, i, msg, i, preemptions)
            notes.append(msg)
        if last >= 0 and tid != last and last in en:
            preemptions += 1
        last = tid
        first = len(ex.trace)  # the step's first trace entry (lock operations may join more)
        ex.step(tid)
        if first < len(ex.trace):
            ex.trace[first].preempted = preemptions > 0 and first > 0 and (
                ex.trace[first - 1].thread != st.thread
                and names.index(ex.trace[first - 1].thread) in en
            )
    msg = "; ".join(notes) if notes else "replayed every step"
    return ReplayResult(ex.finding, ex.trace, None, msg, len(schedule), preemptions)


def initial_state(program: Program) -> dict[str, dict[str, str]]:
    """Every shared object's fields (ghost fields too) in the initial state, as text."""
    ex = Execution(program)
    state = {name: {f: repr(v) for f, v in fields.items() if f != "_freed"}
             for name, fields in snapshot(ex).items()}
    ex.close()
    return state
