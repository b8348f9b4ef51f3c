"""The reference-owner ledger of a finding: every get and put of a page refcount or a pgmap
reference, with its owner, kernel function, step and reason, read from the recorded trace.

A page reference's owner comes from the model's ghost ledger ``Page.owners``, whose update
the trace records on the step of the atomic (``TraceStep.ghosts``). A pgmap reference has no
ledger in the model: its owner is the thread that took it. The kernel function of a get or
put is the caller of the outermost refcount API on the step's model stack (``gup`` in
``hva_to_pfn_fast``, ``put_page`` in ``memunmap_pages``), as each API declares itself
(:mod:`pfnlab.kernel.roles`).

A leak is a get with no put by the same owner when the trace ends, told as one of three
stories: a release function the owner's thread ran without putting it, and the predicate
that made it skip the put (from the trace's notes of what predicates returned; a release
that did put a reference of that page is not one that skipped); or a hand-off, the pfn
stored by the owner's thread in a shared field (a cache) and never put from there, which
names the field and, where the field already held that pfn with an earlier reference, that
reference (two references for one cached pfn, one put); or neither (the thread never
reached a put, or its operation returned without one). References of one owner on one page
are interchangeable to the refcount: where one of them was handed to a field that already
held its pfn, that one is the leak told. The host's own references (``Page.owners`` names
of :mod:`pfnlab.mm.owners`: a PTE mapping's, a new page's first) are never a leak. An
underflow is a put its owner had no get for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pfnlab.explore.findings import FINAL, HANG, Finding, TraceStep
from pfnlab.kernel.calls import KernelCall
from pfnlab.kernel.roles import RELEASES, refcount_site
from pfnlab.mm.owners import HOST_OWNERS
from pfnlab.properties import REFS_BALANCED

#: objects of the host's own structures: a pfn written there is not handed to a cache
_HOST_OBJECTS = ("page@", "pte:", "pmd:", "section@", "pgmap:")


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
    handed_to: str = ""       # "gpc.pfn": the shared field the owner's thread stored the pfn in
    handed_at: int | None = None
    handed_by: str = ""       # the function that stored it ("gpc_refresh")
    already_held: int | None = None  # the get whose reference that field held for this pfn
    put_once: int | None = None      # the one put of the two (matched to ``already_held``)
    #: where the field held that pfn until a placeholder replaced it (a refresh that clears
    #: the field while it looks up): the step, the function and the value written there
    cleared_at: int | None = None
    cleared_by: str = ""
    cleared_to: Any = None
    #: the step where the owner's thread took another reference on the page in the same
    #: function while it held this one, never handed on (a retried lookup)
    again_at: int | None = None
    #: the execution ran to its end (a final check): the owner's thread finished
    ended: bool = False


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
    hands = _Handoffs(finding.trace)
    for st in finding.trace:
        hands.stored(st, open_gets)
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
            hands.got(ev)
        else:
            pending = open_gets.get(key)
            if pending:
                g = hands.to_put(pending, ev)
                pending.remove(g)
                g.match, ev.match = ev.step, g.step
            elif b <= 0 or not (dead or led.initial.get(st.obj, {}).get(owner, 0) > 0
                                or (st.obj.startswith("pgmap:") and b > 0)):
                led.underflows.append(ev)
    # a get not put by the end of the trace is a leak only where the finding is about one
    # (a leak, a hang, a check at the end): other findings' traces stop at the violating
    # step, before the thread's put ("never reached a put" would be false)
    if finding.prop == REFS_BALANCED or finding.kind in (HANG, FINAL):
        puts = {e.step for e in led.events if e.delta < 0}
        for gets in open_gets.values():
            for g in gets:
                if g.obj.startswith("page@") and g.owner not in HOST_OWNERS:
                    led.leaks.append(_explain_leak(finding, hands, puts, g, led.events))
    led.leaks.sort(key=lambda lk: lk.get.step)
    return led


def _pfn_of(obj: str) -> int:
    """``page@0x104`` -> 0x104."""
    return int(obj.split("@", 1)[1], 16)


def _holds_pfn(value: Any, pfn: int) -> bool:
    """Whether a written value is the pfn, or an object carrying it (``.pfn``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value == pfn
    got = getattr(value, "pfn", None)
    return isinstance(got, int) and not isinstance(got, bool) and got == pfn


class _Handoffs:
    """Which page references were handed to a shared field (a cache), which field holds
    which, and which were displaced from their field by a later one: a put of one owner's
    reference on a page releases a displaced one first (a refresh puts the old pfn), then
    the newest one that no field holds, then the newest one a field holds."""

    def __init__(self, trace: list[TraceStep]) -> None:
        self.trace = trace
        self.store_of: dict[int, TraceStep] = {}     # get step -> its hand-off write
        self.by_store: dict[int, RefEvent] = {}      # hand-off write step -> the get
        self.holder: dict[tuple[str, str], RefEvent] = {}  # field -> the get it holds
        self.displaced: dict[int, RefEvent] = {}     # hand-off step -> the get it displaced
        self.dropped: list[RefEvent] = []            # displaced gets, in order
        #: (thread, page) -> the get whose pfn the thread last took out of its field
        self.taken_out: dict[tuple[str, str], RefEvent] = {}

    def got(self, g: RefEvent) -> None:
        """A get: find the write that hands its pfn to a field (before its thread's next
        get or put of the page)."""
        if not g.obj.startswith("page@"):
            return
        pfn = _pfn_of(g.obj)
        for st in self.trace[g.step + 1:]:
            if st.thread != g.thread:
                continue
            if st.obj == g.obj and st.field == "refcount" and st.action == "rmw":
                return
            if (st.action == "write" and not st.obj.startswith(_HOST_OBJECTS)
                    and _holds_pfn(st.after, pfn)):
                self.store_of[g.step], self.by_store[st.index] = st, g
                return

    def stored(self, st: TraceStep, open_gets: dict[tuple[str, str], list[RefEvent]]) -> None:
        """At a hand-off write: the field now holds its get; what it held is displaced. At
        a write that takes a held pfn out of its field (a release clearing the cache), that
        field's get is the one the thread's next put of the page releases."""
        g = self.by_store.get(st.index)
        if g is None:
            old = self.holder.get((st.obj, st.field))
            if (st.action == "write" and old is not None and old.thread == st.thread
                    and _holds_pfn(st.before, _pfn_of(old.obj))
                    and not _holds_pfn(st.after, _pfn_of(old.obj))):
                self.taken_out[(st.thread, old.obj)] = old
            return
        old = self.holder.get((st.obj, st.field))
        if old is not None and old.match is None and old in open_gets.get((old.obj, old.owner),
                                                                          []):
            self.displaced[st.index] = old
            self.dropped.append(old)
        self.holder[(st.obj, st.field)] = g

    def to_put(self, pending: list[RefEvent], put: RefEvent | None = None) -> RefEvent:
        """The pending get a put releases (see the class)."""
        for g in self.dropped:
            if g in pending:
                return g
        if put is not None:
            out = self.taken_out.pop((put.thread, put.obj), None)
            if out is not None and out in pending:
                return out
        loose = [g for g in pending if g.step not in self.store_of]
        return (loose or pending)[-1]


def _cleared(trace: list[TraceStep], hand: TraceStep, pfn: int) -> tuple[int | None, str, Any]:
    """The last write before the hand-off ``hand`` that replaced ``pfn`` in its field with
    something else (a placeholder): its step, function and value."""
    for st in reversed(trace[:hand.index]):
        if (st.action == "write" and (st.obj, st.field) == (hand.obj, hand.field)
                and _holds_pfn(st.before, pfn) and not _holds_pfn(st.after, pfn)):
            return st.index, (st.where[-1] if st.where else ""), st.after
    return None, "", None


def _release_put(trace: list[TraceStep], at: int, caller: str, obj: str,
                 puts: set[int], thread: str) -> bool:
    """Whether the call of release ``caller`` running at step ``at`` put a reference of
    ``obj`` (a release that did put is not one that skipped)."""
    for st in trace[at:]:
        if st.thread != thread:
            continue
        if caller not in st.where:
            return False
        if st.index in puts and st.obj == obj:
            return True
    return False


def _within(trace: list[TraceStep], start: int, end: int, fn: str, thread: str) -> bool:
    """Whether ``thread`` stayed inside ``fn`` from step ``start`` to step ``end``."""
    return all(fn in st.where for st in trace[start:end + 1] if st.thread == thread)


def _explain_leak(finding: Finding, hands: _Handoffs, puts: set[int], g: RefEvent,
                  events: list[RefEvent]) -> Leak:
    """Find the release function the owner's thread ran after the get without a put, else
    the shared field the pfn was handed to, else the same lookup made again while the
    reference was held (a retry that drops it)."""
    lk = Leak(g)
    for st in finding.trace[g.step + 1:]:
        if st.thread != g.thread:
            continue
        for call in reversed(st.notes):
            if not isinstance(call, KernelCall) or call.name not in st.where:
                continue
            j = st.where.index(call.name)
            caller = st.where[j - 1] if j > 0 else ""
            if caller in RELEASES and not _release_put(finding.trace, st.index, caller, g.obj,
                                                       puts, g.thread):
                lk.skipped_by, lk.skipped_at, lk.decided_at = caller, st.index, st.index
                lk.because = f"{call.name}({call.args}) returned {call.answer()}"
                return lk
    hand = hands.store_of.get(g.step)
    if hand is not None:
        lk.handed_to, lk.handed_at = f"{hand.obj}.{hand.field}", hand.index
        lk.handed_by, lk.decided_at = (hand.where[-1] if hand.where else ""), hand.index
        old = hands.displaced.get(hand.index)
        # the field held this pfn already (or until a placeholder replaced it, with no put
        # of its reference since), and the function that stored it again did not put the
        # reference it held: two references for one cached pfn
        if (old is not None and old.obj == g.obj and old.match is not None
                and not _within(finding.trace, hand.index, old.match, lk.handed_by, g.thread)):
            lk.already_held, lk.put_once = old.step, old.match
            if hand.before != hand.after:
                lk.cleared_at, lk.cleared_by, lk.cleared_to = _cleared(
                    finding.trace, hand, _pfn_of(g.obj))
    else:
        # the thread's next reference on the page, taken by the same function, before any
        # put of it by the owner: the lookup was made again and this one's reference dropped
        for e in events:
            if e.step <= g.step or e.obj != g.obj or e.owner != g.owner:
                continue
            if e.delta > 0 and e.thread == g.thread and e.site == g.site:
                lk.again_at = e.step
            break
    lk.ended = finding.kind == FINAL
    # I1 is checked when the owner's operation returns: the path it took had no put (an
    # early return on an error path), which is not "never got there"
    # (at the end of the execution every operation has returned)
    lk.returned = finding.prop == REFS_BALANCED and g.owner not in ("", g.thread) and (
        finding.details.get("leaked_by") == g.owner or finding.kind == FINAL)
    return lk
