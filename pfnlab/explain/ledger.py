"""The reference-owner ledger of a finding: every get and put of a page refcount or a pgmap
reference, with its owner, kernel function, step and reason, read from the recorded trace.

A page reference's owner comes from the model's ghost ledger ``Page.owners``, whose update
the trace records on the step of the atomic (``TraceStep.ghosts``). A pgmap reference has no
ledger in the model: its owner is the thread that took it. The kernel function of a get or
put is the caller of the outermost refcount API on the step's model stack (``gup`` in
``hva_to_pfn_fast``, ``put_page`` in ``memunmap_pages``), as each API declares itself
(:mod:`pfnlab.kernel.roles`).

A leak is a get with no put by the same owner when the trace ends, with the release function
the owner's thread ran instead and the predicate that made it skip the put (from the trace's
notes of what predicates returned). An underflow is a put its owner had no get for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pfnlab.explore.findings import FINAL, HANG, Finding, TraceStep
from pfnlab.kernel.calls import KernelCall
from pfnlab.kernel.roles import RELEASES, refcount_site
from pfnlab.properties import REFS_BALANCED

#: functions that drop what their caller got (where a skipped put shows)


@dataclass
class RefEvent:
    """One get (``delta > 0``) or put of a counted reference."""

    step: int
    thread: str
    counter: str          # "page 0x104", "pgmap dax0"
    obj: str              # model object name, "page@0x104"
    delta: int
    count_before: int
    count_after: int
    owner: str            # ledger owner, or the thread for unledgered references
    site: str             # kernel function that took or dropped it
    api: str              # refcount API it went through ("gup", "put_page", ...)
    dead: bool = False    # pgmap: the put killed the ref (percpu_ref_kill)
    match: int | None = None  # step of the matching put (for a get) or get (for a put)


@dataclass
class Leak:
    """A get never put: by whom, where, and what the owner's thread did instead."""

    get: RefEvent
    skipped_by: str = ""      # release function that ran without putting it
    skipped_at: int | None = None
    because: str = ""         # "kvm_is_reserved_pfn(0x104) returned true"
    decided_at: int | None = None  # the step whose read decided the skip
    returned: bool = False    # the owner's operation returned holding it (no put on its path)


@dataclass
class Ledger:
    """Every counted get/put of a trace, the leaks and the unmatched puts."""

    events: list[RefEvent] = field(default_factory=list)
    leaks: list[Leak] = field(default_factory=list)
    underflows: list[RefEvent] = field(default_factory=list)
    #: owners holding references since set-up, per counter (from the first ledger change)
    initial: dict[str, dict[str, int]] = field(default_factory=dict)

    def decisive_steps(self) -> set[int]:
        """Steps a mail trace should show even if they only read: the skips' decisions."""
        return {lk.decided_at for lk in self.leaks if lk.decided_at is not None}

    def held(self, obj: str) -> list[RefEvent]:
        """The gets on ``obj`` (model name) still unmatched at the end of the trace."""
        return [e for e in self.events if e.obj == obj and e.delta > 0 and e.match is None]


def counter_name(obj: str) -> str:
    """``page@0x104`` -> ``page 0x104``; ``pgmap:dax0`` -> ``pgmap dax0``."""
    return obj.replace("@", " ").replace(":", " ", 1)


def site_of(where: tuple[str, ...]) -> tuple[str, str]:
    """(kernel function, API family) of a refcount step: the caller of the outermost
    refcount API (declared with :func:`pfnlab.kernel.roles.refcount_api`), else the
    innermost function and no API."""
    found = refcount_site(where)
    if found is not None:
        return found
    return (where[-1] if where else "?"), ""


def _count(obj: str, field_: str, v: Any) -> int | None:
    if obj.startswith("page@") and field_ == "refcount" and isinstance(v, int):
        return v
    if obj.startswith("pgmap:") and field_ == "ref" and isinstance(v, tuple):
        return int(v[0])
    return None


def _owner_delta(st: TraceStep, delta: int) -> str | None:
    for obj, fld, before, after in st.ghosts:
        if obj == st.obj and fld == "owners":
            b, a = dict(before), dict(after)
            for o in sorted(set(a) | set(b)):
                if a.get(o, 0) - b.get(o, 0) == delta:
                    return str(o)
    return None


def build_ledger(finding: Finding) -> Ledger:
    """The ledger of ``finding``'s trace (see the module docstring)."""
    led = Ledger()
    open_gets: dict[tuple[str, str], list[RefEvent]] = {}
    for st in finding.trace:
        if st.action not in ("rmw", "write"):
            continue
        b, a = _count(st.obj, st.field, st.before), _count(st.obj, st.field, st.after)
        if b is None or a is None:
            continue
        dead = (st.obj.startswith("pgmap:") and isinstance(st.after, tuple)
                and bool(st.after[1]) and not st.before[1])
        if a == b and not (st.obj.startswith("page@") and b == 0 and "put" in st.label):
            continue
        delta = a - b
        site, api = site_of(st.where)
        owner = _owner_delta(st, delta) if delta else None
        for obj, fld, before, _after in st.ghosts:
            if obj == st.obj and fld == "owners":
                led.initial.setdefault(st.obj, dict(before))
        if owner is None:
            owner = "initial" if dead else st.thread
        ev = RefEvent(st.index, st.thread, counter_name(st.obj), st.obj, delta, b, a, owner,
                      site, api, dead=dead)
        led.events.append(ev)
        key = (st.obj, owner)
        if delta > 0:
            open_gets.setdefault(key, []).append(ev)
        else:
            pending = open_gets.get(key)
            if pending:
                g = pending.pop()
                g.match, ev.match = ev.step, g.step
            elif b <= 0 or not (dead or led.initial.get(st.obj, {}).get(owner, 0) > 0
                                or (st.obj.startswith("pgmap:") and b > 0)):
                led.underflows.append(ev)
    # a get not put by the end of the trace is a leak only where the finding is about one
    # (a leak, a hang, a check at the end): other findings' traces stop at the violating
    # step, before the thread's put ("never reached a put" would be false)
    if finding.prop == REFS_BALANCED or finding.kind in (HANG, FINAL):
        for gets in open_gets.values():
            for g in gets:
                if g.obj.startswith("page@"):
                    led.leaks.append(_explain_leak(finding, g))
    led.leaks.sort(key=lambda lk: lk.get.step)
    return led


def _explain_leak(finding: Finding, g: RefEvent) -> Leak:
    """Find the release function the owner's thread ran after the get without a put."""
    lk = Leak(g)
    for st in finding.trace[g.step + 1:]:
        if st.thread != g.thread:
            continue
        for call in reversed(st.notes):
            if not isinstance(call, KernelCall) or call.name not in st.where:
                continue
            j = st.where.index(call.name)
            caller = st.where[j - 1] if j > 0 else ""
            if caller in RELEASES:
                lk.skipped_by, lk.skipped_at, lk.decided_at = caller, st.index, st.index
                lk.because = f"{call.name}({call.args}) returned {call.answer()}"
                return lk
    # I1 is checked when the owner's operation returns: the path it took had no put (an
    # early return on an error path), which is not "never got there"
    lk.returned = finding.prop == REFS_BALANCED and g.owner not in ("", g.thread) and \
        finding.details.get("leaked_by") == g.owner
    return lk
