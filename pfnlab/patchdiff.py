"""Patch diff: which properties hold in one variant and not in the other, and why.

Both variants are checked on the same scenarios with the same budget (every distinct
finding collected). A property is ``fixed`` when A violates it and B does not, ``broken``
when B violates it and A does not; either way the report shows the trace that tells them
apart (the violating side's minimal trace) and what that schedule does on the other
variant (replayed by thread names: it diverges, or runs without the finding). A property
that B does not violate only counts as holding if B's search was exhaustive; otherwise the
difference is reported as ``unknown``. Both sides are checked through
:mod:`pfnlab.pipeline`; :mod:`pfnlab.report.diffmode` renders the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pfnlab import pipeline
from pfnlab.explain.analysis import analyse
from pfnlab.explore.findings import Finding
from pfnlab.explore.schedule import Schedule, Step
from pfnlab.explore.search import Budget, Result
from pfnlab.explore.search.common import masked
from pfnlab.verdicts import (  # re-exported: pfnlab.patchdiff.ScenarioDiff as before
    BOTH,
    BROKEN,
    FIXED,
    UNKNOWN,
    PropDiff,
    ScenarioDiff,
)


def _by_prop(res: Result) -> dict[str, Finding]:
    out: dict[str, Finding] = {}
    for f in res.findings:
        out.setdefault(f.prop, f)
    return out


def _on_other(variant: str, scenario: str, sizes: dict[str, int], f: Finding,
              mm: str | None = None) -> str:
    rr = pipeline.replay(variant, scenario, Schedule(Step(s.thread, "") for s in f.schedule),
                         sizes=sizes, mm=mm, promoted=f.details.get("promoted", ()),
                         strict=False)
    if rr.diverged:
        return f"on {variant} the schedule diverges: {rr.message}"
    g = rr.find(f.key) or rr.finding
    if g is None:
        return f"on {variant} the same schedule runs without a finding"
    if g.key == f.key:
        return f"on {variant} the same schedule shows it too"
    return f"on {variant} the same schedule ends in {g.kind} {g.prop}: {g.message}"


def _undecided(res: Result, prop: str, variant: str) -> str:
    """Why ``res`` (where ``prop`` was not violated) does not show that it holds, or ""."""
    if not res.exhaustive:
        return f"search not exhaustive on {variant}"
    if res.goals_missed:
        return f"goal never reached on {variant}: {', '.join(res.goals_missed)}"
    why = masked(res, prop)
    return f"not established on {variant}: {why}" if why else ""


def diff(a: str, b: str, scenarios: list[str], *, sizes: dict[str, int] | None = None,
         budget: Budget | None = None, mm: str | None = None) -> list[ScenarioDiff]:
    """Check ``a`` and ``b`` on each scenario (on host mm ``mm``, see ``check``) and list
    the properties that differ."""
    return list(diff_each(a, b, scenarios, sizes=sizes, budget=budget, mm=mm))


def diff_each(a: str, b: str, scenarios: list[str], *, sizes: dict[str, int] | None = None,
              budget: Budget | None = None,
              progress: Callable[[str, str, int], None] | None = None,
              mm: str | None = None,
              ) -> Iterator[ScenarioDiff]:
    """:func:`diff`, one scenario at a time; ``progress(scenario, variant, n)`` is called
    before each search (``n`` counts the scenarios from 1): a command shows it, and may
    raise there to stop (Ctrl-C) with the scenarios done so far."""
    search = pipeline.Search(budget=budget)
    for n, name in enumerate(scenarios, 1):
        sz = pipeline.own_sizes(name, sizes)
        if progress:
            progress(name, a, n)
        ca = pipeline.check(a, name, search, sizes=sz, mm=mm)
        if progress:
            progress(name, b, n)
        cb = pipeline.check(b, name, search, sizes=sz, mm=mm)
        pa, pb, ra, rb = ca.program, cb.program, ca.result, cb.result
        fa, fb = _by_prop(ra), _by_prop(rb)
        sd = ScenarioDiff(name, ca.sizes, ra.exhaustive, rb.exhaustive)
        for prop in dict.fromkeys([*fa, *fb]):
            x, y = fa.get(prop), fb.get(prop)
            if x is not None and y is not None:
                sd.props.append(PropDiff(prop, BOTH, a, analyse(pa, x),
                                         _on_other(b, name, sz, x, mm), x.message, y.message))
            elif x is not None:
                why = _undecided(rb, prop, b)
                sd.props.append(PropDiff(prop, UNKNOWN if why else FIXED, a, analyse(pa, x),
                                         _on_other(b, name, sz, x, mm), x.message, "", why))
            elif y is not None:
                why = _undecided(ra, prop, a)
                sd.props.append(PropDiff(prop, UNKNOWN if why else BROKEN, b, analyse(pb, y),
                                         _on_other(a, name, sz, y, mm), "", y.message, why))
        yield sd
