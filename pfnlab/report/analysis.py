"""Everything a report says about one finding, as mail text: what, why (ledger, hang chain,
causal core), then the trace (:mod:`pfnlab.explain.analysis` derives it)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from pfnlab.report.causal import causal_lines
from pfnlab.report.hangchain import render_hang
from pfnlab.report.ledger import leak_sentence, render_ledger, underflow_sentence
from pfnlab.report.mailtrace import WIDTH, render_mail, shown_rows

if TYPE_CHECKING:  # the type only: a report never re-runs an execution
    from pfnlab.explain.analysis import Analysis
    from pfnlab.explore.findings import Finding


def render_reports(title: str, analyses: list[Analysis], *, full: bool = False) -> list[str]:
    """The mail-ready text of each finding; a finding of an execution whose trace an
    earlier one printed refers to it (finding N: the Nth of the report) instead of
    repeating it."""
    from pfnlab.explain.analysis import same_execution

    refs = same_execution([an.finding for an in analyses])
    if len(analyses) < 2:
        return [render_report(title, an, full=full) for an in analyses]
    names = [an.finding.prop for an in analyses]
    # the printed trace shows the deciding rows of every finding that refers to it
    extra: dict[int, set[int]] = {}
    for k in reversed(range(len(analyses))):  # later findings first: they add to earlier
        need = analyses[k].decisive() | extra.get(k, set())
        cur = k
        while (ref := refs[cur]) is not None:
            i, n = ref
            last = analyses[cur].finding.trace[n - 1].index
            extra.setdefault(i, set()).update(s for s in need if s <= last)
            cur = i
    return [render_report(title, an, full=full, same=refs[k], names=names,
                          also_deciding=extra.get(k, set()))
            for k, an in enumerate(analyses)]


def render_report(title: str, an: Analysis, *, full: bool = False,
                  same: tuple[int, int] | None = None, names: list[str] | None = None,
                  also_deciding: set[int] | None = None) -> str:
    """The mail-ready text of one finding: what, why (ledger, chain, core), then the trace.
    ``same``: (index of the earlier finding of the same execution whose trace was printed,
    number of trace entries the two share) and ``names``: the properties of the report's
    findings in order, ``also_deciding``: steps that later findings referring to this
    trace need shown, see :func:`render_reports`."""
    f = an.finding
    from pfnlab.properties import PROPERTIES

    if f.prop in PROPERTIES:
        out = [f"{title}: {f.prop} violated ({f.kind})"]
    else:  # an exception, an assertion, a lock misuse: the model is wrong, not the design
        out = [f"{title}: model error ({f.kind}{'' if f.prop == f.kind else ', ' + f.prop})"]
    out += textwrap.wrap(f.message, WIDTH, initial_indent="  ", subsequent_indent="  ")
    if f.details.get("ends_execution"):
        from pfnlab.properties import BUILTIN

        out += textwrap.wrap(ends_execution_sentence(an.unchecked, f.prop in BUILTIN), WIDTH,
                             initial_indent="  ", subsequent_indent="  ")
    out.append("")
    if an.chains:
        out += render_hang(an.chains)
    leaks = [] if an.chains else an.ledger.leaks
    for lk in leaks:
        out += textwrap.wrap("leak: " + leak_sentence(lk), WIDTH, subsequent_indent="  ")
    for u in an.ledger.underflows:
        out += textwrap.wrap("underflow: " + underflow_sentence(u), WIDTH,
                             subsequent_indent="  ")
    if an.causal.first is not None and an.ledger.leaks:
        # the pair below decides only whether the leaking path runs: do not let it read as
        # the cause
        out += textwrap.wrap("cause: the leaked reference above; the racing pair below only "
                             "decides whether that reference is taken at all.", WIDTH,
                             subsequent_indent="  ")
    out += causal_lines(an.causal, model_error=f.prop not in PROPERTIES)
    out.append("")
    # rows are numbered by trace entry: a lock operation joined to a step is a row of its
    # own, so say both counts where they differ
    shown = "every row" if full else "the deciding rows; --full for every row"
    rows = (f"{f.steps} scheduling steps as {len(f.trace)} rows, lock operations and reads "
            "under a pin joined to their steps" if len(f.trace) != f.steps
            else f"{f.steps} step{'' if f.steps == 1 else 's'}")
    if not f.trace and f.steps:
        # the search's schedule did not replay (explain() says so in f.minimal): say that,
        # never that the finding needs no step
        out += textwrap.wrap(f"trace: none; the search's schedule of {f.steps} steps "
                             f"{f.minimal}", WIDTH)
        return "\n".join(out)
    if not f.trace:
        out += textwrap.wrap("trace: none; it arises before any scheduling step, while the "
                             "threads run to their first shared access (set-up code of the "
                             "threads)", WIDTH)
        return "\n".join(out)
    decisive = an.decisive() | set(also_deciding or ())
    start = 0
    hide: list[int] = []
    if same is not None:
        i, n = same
        other = f"finding {i + 1}" + (f" ({names[i]})" if names else "")
        last = f.trace[n - 1].index
        # (this finding's own trace, minimised for it, is the one that agrees with the
        # other's: its minimality claim stands)
        if n == len(f.trace):
            out += textwrap.wrap(f"trace: same execution as {other}, up to its step "
                                 f"{last} ({rows}; {f.minimal}).", WIDTH)
            return "\n".join(out)
        out += textwrap.wrap(f"trace: same execution as {other} up to its step "
                             f"{last}, then ({rows}; {shown}; {f.minimal}):", WIDTH)
        start = n
    else:
        out += textwrap.wrap(f"trace ({rows}; {shown}; {f.minimal}):", WIDTH)
        setup = 0 if full else an.setup_end(decisive)
        if setup and shown_rows(f, range(setup), decisive=decisive):
            start = setup
        if not full:
            hide = [k for k in an.setup_within(setup, decisive)
                    if shown_rows(f, range(k, k + 1), decisive=decisive)]
        if start or hide:
            out += textwrap.wrap(_left_out(f, start, hide), WIDTH)
    out.append("")
    out.append(render_mail(f, full=full, decisive=decisive, start=start, hide=set(hide)))
    if full and an.ledger.events:
        out.append("")
        # the leaks and underflows are said above the trace already (a hang's leaks in
        # its chain, in other words: they are listed here)
        out += render_ledger(an.ledger, leaks=bool(an.chains), underflows=False)
    return "\n".join(out)


def _steps(indexes: list[int]) -> str:
    """``step 3``, ``steps 0-1``, ``steps 3-4 and 7``: trace step numbers as ranges."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs]
    one = len(indexes) == 1
    return f"step{'' if one else 's'} " + (
        parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1])


def _left_out(f: Finding, setup: int, hide: list[int]) -> str:
    """What a short trace says it left out: the set-up before the race (the first
    ``setup`` entries), and set-up further on, still before the race (trace positions
    ``hide``)."""
    lead = (_steps(list(range(f.trace[0].index, f.trace[setup - 1].index + 1)))
            if setup else "")
    if not hide:
        return (f"({lead}, set-up before the race that no other thread's step touches, "
                f"{'is' if setup == 1 else 'are'} left out; --full shows them)")
    threads = list(dict.fromkeys(f.trace[k].thread for k in hide))
    within = " and ".join(
        f"{t}'s {_steps([f.trace[k].index for k in hide if f.trace[k].thread == t])}"
        for t in threads)
    return (f"({lead + ' and ' if lead else ''}{within}, set-up before the race that no "
            "other thread's step touches, are left out; --full shows them)")


def vacuous_lines(names: list[str], why: dict[str, str] | None = None) -> list[str]:
    """The warning a report gives for each check of the model's own that never read shared
    state, or (``why``: what to say) read some but returned before its condition every
    time (:mod:`pfnlab.model.vacuous`): it holds whatever the design does."""
    out: list[str] = []
    for n in names:
        text = (why or {}).get(n) or (f"check {n!r} never read any shared state: it holds "
                                      "vacuously (a wrong key or name, so that every lookup "
                                      "gave None?)")
        out += textwrap.wrap(text, WIDTH, subsequent_indent="  ")
    return out


def ends_execution_sentence(unchecked: list[str], builtin: bool = False) -> str:
    """What a report says of an invariant finding that ended its execution (an invariant
    not declared stable: docs/reductions.md section 9), naming what it left unchecked; a
    built-in one (``builtin``: secondary-coherent, which a refresh makes true again) is
    not the user's to declare stable."""
    left = (f" ({', '.join(unchecked)}, violated in no execution, "
            f"{'is' if len(unchecked) == 1 else 'are'} not established)" if unchecked else "")
    if builtin:
        return ("(this built-in invariant can become true again, so it is not stable: its "
                f"first violation ends its execution, and the rest of it is unchecked{left})")
    return ("(this invariant is not declared stable: its first violation ends its "
            f"execution, and the rest of it is unchecked{left}; declare it Check(..., "
            "stable=True) if, once false, it stays false, and executions go on past it)")
