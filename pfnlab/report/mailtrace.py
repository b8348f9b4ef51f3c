"""Email-ready traces: one column per thread, at most 80 columns, plain ASCII.

In the style of lockdep's "possible unsafe locking scenario": thread names head the
columns, each row is one step of the (minimal) execution in its thread's column, labelled
with the step's number in the full trace and the kernel function that took it. The short
form collapses raw field accesses into kernel-level actions: refcount changes
(``page 0x104 ref 1 -> 2``), locks, waits, frees and writes that change a value (an SPTE
installed or zapped); a read a kernel predicate made is shown as what the predicate
returned (``kvm_is_reserved_pfn(0x104) = true``: it decides a branch), other plain reads
only where the report marks the step as deciding; every note is shown. ``full=True``
shows every step.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from pfnlab.explain.ledger import counter_name, site_of
from pfnlab.explore.findings import Finding, TraceStep
from pfnlab.kernel.calls import KernelCall

WIDTH = 80
PREFIX = 5  # "%3d  "


@dataclass
class Row:
    """A shown step: its index, thread, kernel function and what it did."""

    index: int
    thread: str
    function: str
    text: str


def short(v: Any, limit: int = 24) -> str:
    """A value in a few ASCII characters: pfns in hex, tuples and long reprs cut."""
    if v is None or isinstance(v, bool | int):
        return hex(v) if isinstance(v, int) and not isinstance(v, bool) and v > 9 else str(v)
    pfn = getattr(v, "pfn", None)
    if isinstance(pfn, int):
        return f"pfn {pfn:#x}"
    if isinstance(v, tuple | frozenset | list):
        items = [short(x, 12) for x in list(v)[:3]]
        s = "(" + ", ".join(items) + (", ...)" if len(v) > 3 else ")")
    else:
        s = str(v)
    s = s.encode("ascii", "replace").decode()
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _note_call(st: TraceStep) -> tuple[str, str] | None:
    """(caller, "pred(args) = value") of the outermost kernel call noted on ``st``."""
    for call in reversed(st.notes):
        if isinstance(call, KernelCall) and call.name in st.where:
            j = st.where.index(call.name)
            caller = st.where[j - 1] if j > 0 else st.thread
            return caller, f"{call.name}({call.args}) = {call.answer()}"
    return None


def predicates(trace: list[TraceStep]) -> frozenset[str]:
    """The kernel predicates (functions noted returning true or false) called in ``trace``."""
    return frozenset(n.name for st in trace for n in st.notes
                     if isinstance(n, KernelCall) and n.value in ("True", "False"))


def _branch_call(st: TraceStep, preds: frozenset[str] | None) -> tuple[str, str] | None:
    """(caller, "pred(args) = value") of a read made inside a kernel predicate that decides
    a branch of a caller outside any predicate (``kvm_is_reserved_pfn(0x104) = true``; not
    the ``pfn_valid()`` it asked on the way), or None. ``preds``: :func:`predicates` of the
    trace (None: every outermost predicate counts)."""
    for call in reversed(st.notes):
        if isinstance(call, KernelCall) and call.name in st.where:
            if call.value not in ("True", "False"):
                return None
            j = st.where.index(call.name)
            if preds is not None and any(w in preds for w in st.where[:j]):
                return None
            caller = st.where[j - 1] if j > 0 else st.thread
            return caller, f"{call.name}({call.args}) = {call.answer()}"
    return None


def describe(st: TraceStep, *, full: bool = False, decisive: bool = False,
             preds: frozenset[str] | None = None) -> Row | None:
    """The row of a step, or None when the short form leaves it out."""
    inner = st.where[-1] if st.where else st.thread
    a = st.action
    if st.obj.startswith(("page@", "pgmap:")) and st.field in ("refcount", "ref") and a in (
        "rmw", "write"
    ):
        site, _api = site_of(st.where)
        b = st.before[0] if isinstance(st.before, tuple) else st.before
        af = st.after[0] if isinstance(st.after, tuple) else st.after
        killed = isinstance(st.after, tuple) and st.after[1] and not st.before[1]
        if b == af and not full and not killed:
            return None
        extra = ", killed" if killed else ""
        return Row(st.index, st.thread, site, f"{counter_name(st.obj)} ref {b} -> {af}{extra}")
    if a == "lock":
        return Row(st.index, st.thread, inner,
                   f"lock({st.obj})" + (" - held, waits" if st.failed_attempt else ""))
    if a == "unlock":
        return Row(st.index, st.thread, inner, f"unlock({st.obj})")
    if a in ("srcu_read_lock", "srcu_read_unlock"):
        return Row(st.index, st.thread, inner, f"{a}({st.obj})")
    if a == "free":
        return Row(st.index, st.thread, inner, f"free({st.obj})")
    if a == "fault":  # the finding the thread's code made before its first step
        return Row(st.index, st.thread, st.thread, "fails in its code before any shared access")
    if a == "wait":
        # the function that waits is the caller of the one that calls wait_until, unless
        # that is an anonymous thread operation (a lambda): then the waiting function
        fn = st.where[-2] if len(st.where) >= 2 and st.where[-2] != "<lambda>" else inner
        what = f"wait {st.field}" + (" - BLOCKS" if st.failed_attempt else "")
        return Row(st.index, st.thread, fn, what)
    if a in ("write", "rmw"):
        # an unchanged value is left out, unless the finding depends on this step
        if st.before == st.after and not (full or decisive):
            return None
        return Row(st.index, st.thread, inner,
                   f"{st.obj}.{st.field} {short(st.before)} -> {short(st.after)}")
    # a read: what a kernel predicate made of it decides a branch, so it is shown
    nc = _note_call(st)
    if decisive and nc is not None:
        return Row(st.index, st.thread, nc[0], nc[1])
    bc = None if full else _branch_call(st, preds)
    if bc is not None:
        return Row(st.index, st.thread, bc[0], bc[1])
    if not (full or decisive):
        return None
    text = f"{st.obj}.{st.field} == {short(st.before)}"
    if nc is not None:
        text += f"; {nc[1]}"
    return Row(st.index, st.thread, inner, text)


def note_rows(st: TraceStep, decisive: bool = False) -> list[Row]:
    """The notes of a step that its own row does not show: the model's own ``note()``
    texts; what a kernel predicate that read only plain fields riding along with the step
    (under a lock) returned; and on a deciding step (``decisive``) what any kernel function
    called after the step's access returned (a predicate answered from locals, say). A
    predicate the step's own access ran inside is shown by the step's row
    (:func:`describe`)."""
    out: list[Row] = []
    # a predicate that read only plain fields (under a lock) rode along with the step
    plain_readers = {fn for action, *_x, fn in st.plain if action == "read"}
    # no function: the call was made after the step's access, by a caller the note does
    # not record; the text names the call
    for n in st.notes:
        if isinstance(n, KernelCall):
            if n.name in st.where:
                continue
            branch = n.value in ("True", "False") and n.name in plain_readers
            if not (decisive or branch):
                continue
            out.append(Row(st.index, st.thread, "", f"{n.name}({n.args}) = {n.answer()}"))
        else:
            out.append(Row(st.index, st.thread, "", f"note: {n}"))
    return out


def rows(st: TraceStep, *, full: bool = False, decisive: bool = False,
         preds: frozenset[str] | None = None) -> list[Row]:
    """The rows of a step: its own, the plain-field accesses that rode along with it
    (``Plain`` fields are not scheduling points; an SPTE install under mmu_lock is one),
    then its notes. A plain read is shown in the short form when the step decides the
    finding."""
    out: list[Row] = []
    row = describe(st, full=full, decisive=decisive, preds=preds)
    if row is not None:
        out.append(row)
    for action, obj, field, before, after, fn in st.plain:
        if action == "read" and not (full or decisive):
            continue
        if action != "read" and before == after and not full:
            continue
        text = (f"{obj}.{field} == {short(before)}" if action == "read"
                else f"{obj}.{field} {short(before)} -> {short(after)}")
        out.append(Row(st.index, st.thread, fn or (st.where[-1] if st.where else st.thread),
                       text))
    return out + note_rows(st, decisive or full)


def _wrap(text: str, width: int) -> list[str]:
    """Wrap on spaces; split a too long identifier after an underscore."""
    out: list[str] = []
    for ln in textwrap.wrap(text, width, break_long_words=False,
                            break_on_hyphens=False) or [""]:
        while len(ln) > width:
            cut = ln.rfind("_", 0, width) + 1 or width
            out.append(ln[:cut])
            ln = "  " + ln[cut:]
        out.append(ln)
    return out


def render_mail(finding: Finding, *, full: bool = False, decisive: set[int] | None = None,
                threads: list[str] | None = None, start: int = 0,
                hide: set[int] | None = None) -> str:
    """The trace as columns per thread (see the module docstring), from trace entry
    ``start`` on, without the entries at the positions ``hide``."""
    decisive = set(decisive or ())
    if finding.trace:  # the step after which the finding shows is always one of them
        decisive.add(finding.trace[-1].index)
    names = threads or list(dict.fromkeys(s.thread for s in finding.trace))
    ncol = max(1, len(names))
    colw = (WIDTH - PREFIX - (ncol - 1)) // ncol
    out = [(" " * PREFIX + " ".join(n[:colw].ljust(colw) for n in names)).rstrip(),
           (" " * PREFIX + " ".join(("-" * min(len(n), colw)).ljust(colw)
                                    for n in names)).rstrip()]
    last_fn: dict[str, str] = {}
    last_thread = ""
    preds = predicates(finding.trace)
    for k, st in enumerate(finding.trace[start:], start):
        if hide and k in hide:
            continue
        first = True
        for row in rows(st, full=full, decisive=st.index in decisive, preds=preds):
            col = names.index(row.thread) if row.thread in names else 0
            lines: list[str] = []
            if row.function and (last_fn.get(row.thread) != row.function
                                 or last_thread != row.thread):
                lines += _wrap(row.function + "()", colw)
            lines += ["  " + ln for ln in _wrap(row.text, colw - 2)]
            if row.function:
                last_fn[row.thread] = row.function
            last_thread = row.thread
            for i, ln in enumerate(lines):
                prefix = f"{st.index:3d}  " if i == 0 and first else " " * PREFIX
                cells = [" " * colw] * ncol
                cells[col] = ln.ljust(colw)
                out.append((prefix + " ".join(cells)).rstrip())
            first = False
    return "\n".join(out)


def shown_rows(finding: Finding, entries: range, *, decisive: set[int]) -> int:
    """How many rows the short form would show for the trace ``entries``."""
    preds = predicates(finding.trace)
    return sum(len(rows(finding.trace[k], decisive=k in decisive, preds=preds))
               for k in entries)
