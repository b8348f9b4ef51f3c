"""The causal core as text and JSON: the deciding pair, the locks each side held and what
would order them, or why no pair decides it (:mod:`pfnlab.explain.causal` finds it)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from pfnlab.explore.findings import TraceStep
from pfnlab.report.mailtrace import _note_call, describe

if TYPE_CHECKING:  # the type only: a report never re-runs an execution
    from pfnlab.explain.causal import Causal


def _what(st: TraceStep) -> str:
    nc = _note_call(st)
    if nc is not None:
        return f"{nc[1].split(' = ')[0]} in {nc[0]}"
    row = describe(st, full=True)
    return f"{row.function}: {row.text}" if row is not None else st.label


def causal_text(c: Causal) -> str:
    """The causal core in one paragraph."""
    if c.alone:
        return (f"no race: {c.alone} alone shows it, in program order (a sequential bug: no "
                "ordering between threads decides it)")
    if c.out_of_time:
        return (f"not computed: the time budget ran out after {c.tried} of the racing pairs "
                "(no claim about which one decides it)")
    if c.steps is None:
        return (f"no single race decides it: reordering any of the {c.tried} racing pairs "
                "nearest the end still ends in a finding (the cause is in program order)")
    a, b = c.steps
    if c.window is not None:
        return _window_text(c)
    la, lb = c.locks[a.thread], c.locks[b.thread]
    common = set(la) & set(lb)
    held = (f"{a.thread} holds {', '.join(la) or 'no lock'} at step {c.first}, {b.thread} "
            f"holds {', '.join(lb) or 'no lock'} at step {c.second}")
    if c.ordering is not None:
        o = c.ordering
        fix = f"the kernel orders these with {o.primitive}: {o.how} ({o.where})"
        if c.via is not None:
            # a pair of critical sections under one lock: the first changed a field the
            # second never looks at, and looking at it is how the kernel orders them
            v = c.via
            fix = (f"both hold {', '.join(sorted(common))}, and {a.thread}'s critical "
                   f"section changed {_field(v)} (step {v.index}), which {b.thread}'s never "
                   f"reads: {fix}")
    elif common:
        fix = (f"both hold {', '.join(sorted(common))}, but nothing makes {b.thread}'s "
               "critical section come first")
    else:
        fix = (f"no common lock, and a lock around the two steps alone would not decide which "
               f"runs first; {_wait(a, b)}, or {_back_off(a, b)}, would order them")
    return (f"the finding needs {a.thread}'s {_what(a)} (step {c.first}) before {b.thread}'s "
            f"{_what(b)} (step {c.second}); run the other way round, the execution ends "
            f"without a finding, and nothing orders them. {held}: {fix}.")


def _field(st: TraceStep) -> str:
    """``kvm.mmu_notifier_count 0 -> 1``: the write a step (or what rode along) made to a
    field the kernel orders."""
    if st.action in ("write", "rmw"):
        row = describe(st, full=True)
        if row is not None:
            return row.text
    for action, obj, fld, before, after, _fn in st.plain:
        if action != "read":
            return f"{obj}.{fld} {before!r} -> {after!r}"
    return f"{st.obj}.{st.field}"


def _wait(a: TraceStep, b: TraceStep) -> str:
    """A fix that makes ``b``'s step come before ``a``'s: ``a`` waits for it."""
    return f"{a.thread} waiting for {b.thread} (a reference, a completion)"


def _back_off(a: TraceStep, b: TraceStep) -> str:
    """A fix that keeps ``b``'s step from running after ``a``'s: ``b`` sees it and backs
    off."""
    return (f"{b.thread} checking, under one lock with its step, whether {a.thread}'s step "
            "has run, and backing off if it has")


def _recheck(b: TraceStep, a: TraceStep) -> str:
    """A fix for a window ``b`` opened with a lookup: ``b`` re-checks, before it commits,
    that ``a`` did not change what it looked up."""
    return (f"{b.thread} re-checking before it commits that {a.thread}'s step has not run "
            "since (a sequence count, retrying if it moved)")


def _span(first: int, last: int) -> str:
    """``step 5`` or ``steps 27-45``."""
    return f"step {first}" if first == last else f"steps {first}-{last}"


def _window_text(c: Causal) -> str:
    """The causal core of an atomicity violation: the pair that opened the window, the
    pair that closed it, and what would order either."""
    assert c.steps is not None and c.window is not None
    a, b = c.steps
    u, w = c.window
    opened = (f"the kernel orders these with {c.window_ordering.primitive}: "
              f"{c.window_ordering.how} ({c.window_ordering.where})"
              if c.window_ordering is not None else _recheck(b, a))
    closed = (f"the kernel orders these with {c.ordering.primitive}: {c.ordering.how} "
              f"({c.ordering.where})" if c.ordering is not None else _wait(a, b))
    return (f"the finding needs {b.thread}'s {_what(u)} (step {u.index}) before "
            f"{a.thread}'s {_what(w)} (step {w.index}), and then {a.thread}'s {_what(a)} "
            f"(step {c.first}) before {b.thread}'s {_what(b)} (step {c.second}): "
            f"{a.thread}'s {_span(w.index, a.index)} ran inside {b.thread}'s window from step "
            f"{u.index} to step {c.second}. Run either pair the other way round and the "
            f"execution ends without a finding; nothing orders them. To order the first "
            f"pair: {opened}. Or the second: {closed}.")


def causal_lines(c: Causal, width: int = 80, model_error: bool = False) -> list[str]:
    """The causal-core section of a text report; for a sequential bug (one thread shows it
    alone) one line that says so, not a paragraph about orderings. A ``model_error`` (the
    model's code raised, or misused a primitive) is no bug of the design: its one line
    says so."""
    if c.alone and model_error:
        return textwrap.wrap(f"no race: {c.alone} alone runs into it, in program order (an "
                             "error in the model's code, not a finding about the design).",
                             width, subsequent_indent="  ")
    if c.alone:
        return textwrap.wrap(f"no race: {c.alone} alone shows it, in program order (a "
                             "sequential bug).", width, subsequent_indent="  ")
    return textwrap.wrap("causal core: " + causal_text(c), width, subsequent_indent="  ")


def verdict(c: Causal) -> str:
    """What the causal analysis concluded, as a word: ``race`` (a deciding pair),
    ``sequential`` (one thread alone shows it), ``no-single-race``, ``out-of-time``."""
    if c.alone:
        return "sequential"
    if c.out_of_time:
        return "out-of-time"
    return "no-single-race" if c.steps is None else "race"


def step_fact(st: TraceStep, locks: list[str]) -> dict[str, Any]:
    """One step of the deciding pair as facts (see the schema's ``pairStep``)."""
    row = describe(st, full=True)
    return {"step": st.index, "thread": st.thread,
            "function": row.function if row is not None else st.thread,
            "what": _what(st), "action": st.action, "object": st.obj, "field": st.field,
            "locks": list(locks)}


def ordering(c: Causal) -> dict[str, Any] | None:
    """The ordering a fix must add (see the schema's ``ordering``): the finding needs the
    pair's first step before its second, so a fix makes the second come first or excludes
    the first coming first; with a lock both hold, that lock already serialises them and
    only the order of the two critical sections is left. None without a deciding pair."""
    if c.steps is None:
        return None
    a, b = c.steps
    common = sorted(set(c.locks[a.thread]) & set(c.locks[b.thread]))
    primitive = None
    if c.ordering is not None:
        o = c.ordering
        primitive = {"primitive": o.primitive, "how": o.how, "where": o.where}
        options = [f"{o.primitive}: {o.how}"]
    elif common:
        options = [f"{b.thread}'s critical section under {', '.join(common)} made to come "
                   "first (a condition checked under the lock, or a wait for it)"]
    else:
        options = [_wait(a, b), _back_off(a, b)]
    window = None
    if c.window is not None:
        u, w = c.window
        wo = c.window_ordering
        options = [f"{wo.primitive}: {wo.how}" if wo is not None else _recheck(b, a),
                   options[0]]
        window = {"must_precede": {"step": w.index, "thread": w.thread},
                  "instead_of": {"step": u.index, "thread": u.thread},
                  "kernel_primitive": None if wo is None else
                  {"primitive": wo.primitive, "how": wo.how, "where": wo.where}}
    via = None
    if c.via is not None:
        v = c.via
        via = {"step": v.index, "thread": v.thread, "object": v.obj, "field": v.field}
    return {"must_precede": {"step": c.second, "thread": b.thread},
            "instead_of": {"step": c.first, "thread": a.thread},
            "common_locks": common, "options": options, "kernel_primitive": primitive,
            "via": via, "window": window}


def causal_json(c: Causal) -> dict[str, Any]:
    """JSON object (see the schema's ``causal``): the text, and the same facts as fields."""
    pair = window = None
    if c.steps is not None:
        pair = [step_fact(st, c.locks.get(st.thread, [])) for st in c.steps]
    if c.window is not None:
        window = [step_fact(st, c.window_locks.get(st.thread, [])) for st in c.window]
    return {"first": c.first, "second": c.second, "text": causal_text(c),
            "locks": c.locks, "pairs_tried": c.tried, "verdict": verdict(c),
            "alone": c.alone or None, "deciding_pair": pair, "window_pair": window,
            "suggested_ordering": ordering(c)}
