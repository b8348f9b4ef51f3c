"""The ledger: what KVM holds and did, kept for property checks (ghost state, no steps).

Everything a property check needs about KVM is in one :class:`KvmLedger` object per VM,
``kvm.ledger``. Its fields are :class:`~pfnlab.explore.Ghost` fields: updating them is not a
scheduling point, they never steer the model, and every update commutes (counter
increments, set insertions). They are updated at the exact step where the kernel takes or
drops the thing they describe, by the primitive that does it: the host's refcount and A/D
primitives call the VM's hooks (:func:`subscribe`), so kernel functions, base or
override, never update the ledger by hand.

Fields (all hashable; read them with ``kvm.ledger.<field>`` or the helpers below;
``refs``, ``active`` and ``maps`` are kept per vCPU in :class:`OwnerLedger` parts and read
as their union):

``refs``
    The page references KVM holds now, as a sorted tuple of ``((head_pfn, owner), n)``.
    ``head_pfn`` is the pfn of the page whose ``_refcount`` the reference pins (the compound
    head: a reference taken through a THP tail pins the head). ``owner`` names the KVM
    context that holds it: ``"<vcpu>:fault"`` (page fault, gup to release),
    ``"<vcpu>:map"`` (``kvm_vcpu_map`` to ``kvm_vcpu_unmap``), ``"kvm"``, or any other owner
    that is not the host's own (``Host.host_owners``). Taken in the step where the refcount
    primitive increments the count for that owner (gup's speculative get, ``get_page``);
    dropped right before the primitive decrements it. A KVM put by an owner that holds no
    reference on that page is reported at once: ``fail("no-put-unreferenced", ...)``
    (I1/I2), naming the kernel function that put.
``events``
    A frozenset of ``(kind, pfn, detail, who)``: things that happened and that a property may
    forbid. Kinds are the ``EV_*`` constants below: every ``WARN`` that fires
    (``"WARN:<function>"``), A/D bits set on a page without the machinery (I6), a THP
    reference shift or huge SPTE on a page that is not a THP / not mapped huge (I7), and the
    violations of I1, I4, I5 and I9 (a ``get_page`` on refcount 0, I2, fails in
    ``get_page`` itself), recorded at the step where they arise (see "Stable checks"
    below). ``who`` is the owner a leak (I1) is of, "" for the other kinds.
``epoch`` / ``inval_active``
    Per hva (sorted tuples of ``(hva, n)``): how many primary-MMU invalidations were
    announced to KVM (``invalidate_range_start`` entered), and how many are inside
    ``invalidate_range_start`` right now. Bumped by :class:`~pfnlab.kvm.kvm.Kvm`'s
    subscriber methods *around* the variant's callback, so a variant cannot skip them.
``bracket``
    Per hva: how many invalidations are between their ``invalidate_range_start`` and the
    return of their ``invalidate_range_end`` (I12: a reference-less mapping may lag the
    host inside one, never after; :mod:`pfnlab.kvm.pfncache`).
``changing``
    Per hva: how many invalidations are between their ``invalidate_range_start`` and the
    call of their ``invalidate_range_end``, where the primary MMU may change the entry
    (a page-table read inside one sees a value that may change without a new start).
``OwnerLedger.looked`` (per vCPU) and ``Spte.origin`` (on each SPTE object, also ghost)
    What a vCPU's operation saw in the host's page tables: ``((hva, pfn, epoch), ...)``,
    the epoch of the hva when the thread last read a PTE (or huge PMD) mapping it to that
    pfn, not counting the invalidations still ``changing`` it. Recorded by the page-table
    entry itself (:class:`~pfnlab.mm.ptefield.PteField`: every read a vCPU thread makes
    inside an operation, whoever's code makes it) and forgotten when the operation ends.
    When a vCPU writes a present SPTE (a hook on ``Spte.spte``, whoever's code writes it)
    the SPTE's origin becomes ``(owner, ((hva, epoch), ...))`` for the hvas it maps that
    the thread saw mapped to the pfns it maps: the pfn was derived from those reads
    (kernel-semantics.md I4). I4 (no stale SPTE): an SPTE whose recorded epoch of some hva
    is older than the current one, while no ``invalidate_range_start`` for that hva is
    still running, maps a pfn the primary MMU has invalidated since it was derived.
``maps``
    A frozenset of ``(owner, gfn, pfn)``: ``kvm_vcpu_map`` mappings between map and unmap
    (I9: each needs a reference held by the same owner on the page, unless the pfn has no
    ``struct page``).
``notifier_starts`` / ``notifier_ends``
    How many ``invalidate_range_start`` / ``_end`` calls KVM received (I10: at the end they
    are equal, ``kvm.mmu_notifier_count`` is 0 and ``kvm.mmu_notifier_seq`` grew by the
    number of ends). ``BUG_ON(mmu_notifier_count < 0)`` is ``fail("notifier-balanced")``.

``active``
    The owners inside an operation that may hold references (a ``tdp_page_fault`` call,
    ``kvm_vcpu_map`` to ``kvm_vcpu_unmap``); set by the thread bodies. An owner outside
    every operation must hold no reference (I1, :func:`check_idle_owners_hold_nothing`).

``retries``
    How many times a fault's ``mmu_notifier_retry`` saw an invalidation (the fault then
    returns RET_PF_RETRY): a witness that a fault overlapped an invalidation, for scenario
    goals. Counted at the retry check itself, so that the goal is reached even when the
    fault goes on to leak its reference (a finding that cuts the execution).

Stable checks: events are recorded where a violation *arises*, so that every property is
checked by a stable invariant (the ledger's ``events`` only grow) and the search needs no
visibility ordering for it:

- I1 (refs-balanced): when an owner's operation returns (:func:`owner_end`) holding a
  reference, or a reference is taken by an owner outside every operation;
- I4 (no-stale-spte): when a vCPU installs an SPTE (any write of a present value to
  ``Spte.spte``, :func:`spte_written`) with an origin older than
  the current epoch of an hva no invalidation is active on, and when the last active
  ``invalidate_range_start`` of an hva returns while such an SPTE is present;
- I5 (no-spte-to-freed): when an SPTE or map is installed on a freed page, and when a page
  is freed (refcount 0, memmap removed) while an SPTE or map refers to it (the host's
  ``free_hooks``, registered by :func:`~pfnlab.kvm.kvm.create_vm`);
- I9 (pin-held): when KVM drops a reference of an owner that has a live map of the page,
  and when the owner touches or unmaps a map it holds no reference for.

A hook decides from state it reads without scheduling points (``__dict__``, ghost fields),
which leaves no trace in the step's footprint. Where the decision depends on a field that
another thread writes in a step not otherwise ordered with this one, the hook rewrites that
field unchanged (:func:`depends_on`): a ghost write conflicts with every other write of it,
so the reduced search explores both orders of the two steps.

Check helpers (:func:`check_refs_balanced`, :func:`check_no_stale_spte`, ...) return
``None`` when the property holds and a one-line message when not, so that a scenario can
wrap them directly in :class:`pfnlab.explore.Check`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pfnlab.explore import (
    Ghost,
    Shared,
    Violation,
    context,
    current_thread,
    fail,
    is_freed,
    model_caller,
)
from pfnlab.mm.kmap import ACCESS, MAP  # the events of kernel mappings (kernel_mapped)
from pfnlab.properties import (  # the registry, with meanings
    AD_ONLY_TRACKED,
    HUGE_ONLY_THP,
    NO_METADATA_AFTER_TEARDOWN,
    NO_PUT_UNREFERENCED,
    NO_SPTE_TO_FREED,
    NO_STALE_SPTE,
    NOTIFIER_BALANCED,
    PIN_HELD,
    READONLY_RESPECTED,
    REFS_BALANCED,
)

if TYPE_CHECKING:
    from pfnlab.kvm.kvm import Kvm

#: the property ids the ledger's checks report (I1-I7, I9, I10; I8 is the teardown's hang)
LEDGER_PROPERTIES = (
    REFS_BALANCED,
    NO_PUT_UNREFERENCED,
    NO_METADATA_AFTER_TEARDOWN,
    NO_STALE_SPTE,
    NO_SPTE_TO_FREED,
    AD_ONLY_TRACKED,
    HUGE_ONLY_THP,
    PIN_HELD,
    NOTIFIER_BALANCED,
    READONLY_RESPECTED,
)

# ------------------------------------------------------------------ event kinds
EV_WARN = "WARN:"                  # prefix; the function name follows
EV_VM_BUG_ON = "VM_BUG_ON:"        # prefix; the function name follows
EV_AD_UNTRACKED = "ad-untracked"   # SetPageDirty/mark_page_accessed on an untracked page
EV_THP_SHIFT_NON_THP = "thp-shift-non-thp"    # reference shifted to a non-THP head
EV_HUGE_SPTE_HOST_SMALL = "huge-spte-host-small"  # huge SPTE where the host maps < huge
# Violations detected at the step where they arise (the invariants they replace could flip
# back: a stale or freed SPTE gets zapped, a teardown begins, a map is dropped). The detail
# is the whole message.
EV_LEAK = "leak"                    # I1: an idle owner holds a reference
EV_STALE_SPTE = "stale-spte"        # I4: an SPTE maps a pfn invalidated after its lookup
EV_SPTE_TO_FREED = "spte-to-freed"  # I5: an SPTE or map refers to a freed page
EV_MAP_UNPINNED = "map-unpinned"    # I9: a live kvm_vcpu_map without its reference
EV_WRITABLE_RO = "writable-over-ro"  # I11: a writable SPTE where the host maps read-only
_SENTENCE_KINDS = frozenset({EV_LEAK, EV_STALE_SPTE, EV_SPTE_TO_FREED, EV_MAP_UNPINNED,
                             EV_WRITABLE_RO})

#: the property each WARN reports (by the function it fires in); other WARNs are I3
WARN_PROPERTY = {
    "mmu_spte_clear_track_bits": NO_SPTE_TO_FREED,
}


def event_property(kind: str) -> str:
    """The property id an event of ``kind`` violates (see pfnlab.properties)."""
    if kind.startswith(EV_WARN):
        return WARN_PROPERTY.get(kind[len(EV_WARN):], NO_METADATA_AFTER_TEARDOWN)
    if kind.startswith(EV_VM_BUG_ON) or kind in (EV_THP_SHIFT_NON_THP, EV_HUGE_SPTE_HOST_SMALL):
        return HUGE_ONLY_THP
    if kind == EV_AD_UNTRACKED:
        return AD_ONLY_TRACKED
    if kind == EV_LEAK:
        return REFS_BALANCED
    if kind == EV_STALE_SPTE:
        return NO_STALE_SPTE
    if kind == EV_SPTE_TO_FREED:
        return NO_SPTE_TO_FREED
    if kind == EV_MAP_UNPINNED:
        return PIN_HELD
    if kind == EV_WRITABLE_RO:
        return READONLY_RESPECTED
    raise ValueError(f"event kind {kind!r} has no property")


class OwnerLedger(Shared):
    """The per-owner part of the ledger: ``refs``, ``active`` and ``maps`` of its owners.

    Ghost writes conflict like writes in the search, so one field updated by every vCPU
    would order all their gets, puts, maps and operation brackets against each other. Each
    vCPU's owners (``vcpuN:fault``, ``vcpuN:map``: one thread) get their own part; the
    decisions of the hooks read only the part of the owner they are about.

    ``active`` is a plain attribute, not a ghost field: only the owner's own thread enters
    and leaves its operations, so whether it is inside one is a function of that thread's
    position, which the search's state already distinguishes (a write of it would only add
    orderings, e.g. with the step a thread's start-up ghost writes are charged to).
    """

    refs: Ghost[tuple[tuple[tuple[int, str], int], ...]] = Ghost(())
    maps: Ghost[frozenset[tuple[str, int, int]]] = Ghost(frozenset())
    #: ``((hva, pfn, epoch), ...)``: the page-table reads of the current operation of this
    #: part's thread (a vCPU's), the latest per (hva, pfn); see the module docstring
    looked: Ghost[tuple[tuple[int, int, int], ...]] = Ghost(())

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.active: frozenset[str] = frozenset()


class KvmLedger(Shared):
    """Ghost bookkeeping of one VM (see the module docstring for each field).

    ``refs``, ``active`` and ``maps`` are the union of the :class:`OwnerLedger` parts: one
    per vCPU (see :meth:`add_parts`) and one for any other owner.
    """

    events: Ghost[frozenset[tuple[str, int, str, str]]] = Ghost(frozenset())
    epoch: Ghost[tuple[tuple[int, int], ...]] = Ghost(())
    inval_active: Ghost[tuple[tuple[int, int], ...]] = Ghost(())
    bracket: Ghost[tuple[tuple[int, int], ...]] = Ghost(())
    changing: Ghost[tuple[tuple[int, int], ...]] = Ghost(())
    notifier_starts: Ghost[int] = Ghost(0)
    notifier_ends: Ghost[int] = Ghost(0)
    retries: Ghost[int] = Ghost(0)

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.other = OwnerLedger(f"{name}[other]")
        self.parts: dict[str, OwnerLedger] = {}

    def add_parts(self, prefixes: Iterable[str]) -> None:
        """Set-up: a part for the owners ``<prefix>:...`` of each prefix (a vCPU name)."""
        for p in prefixes:
            self.parts[p] = OwnerLedger(f"{self.name}[{p}]")

    def part(self, owner: str) -> OwnerLedger:
        """The part that keeps ``owner``'s bookkeeping (no steps)."""
        return self.parts.get(owner.split(":", 1)[0], self.other)

    def all_parts(self) -> list[OwnerLedger]:
        """Every part, in a fixed order."""
        return [*self.parts.values(), self.other]

    @property
    def refs(self) -> tuple[tuple[tuple[int, str], int], ...]:
        """Every owner's references, sorted ``((head_pfn, owner), n)``."""
        return tuple(sorted(x for p in self.all_parts() for x in p.refs))

    @property
    def active(self) -> frozenset[str]:
        """The owners inside an operation."""
        return frozenset().union(*(p.active for p in self.all_parts()))

    @property
    def maps(self) -> frozenset[tuple[str, int, int]]:
        """The live kvm_vcpu_map mappings ``(owner, gfn, pfn)``."""
        return frozenset().union(*(p.maps for p in self.all_parts()))


# ------------------------------------------------------------------ sorted-tuple maps
def tget(items: tuple[tuple[Any, int], ...], key: Any) -> int:
    """The count stored under ``key`` in a sorted ``((key, n), ...)`` tuple (0 if absent)."""
    for k, n in items:
        if k == key:
            return n
    return 0


def tadd(items: tuple[tuple[Any, int], ...], key: Any, delta: int) -> tuple[Any, ...]:
    """``items`` with ``delta`` added under ``key`` (entries that reach 0 are dropped)."""
    d = dict(items)
    n = d.get(key, 0) + delta
    if n:
        d[key] = n
    else:
        d.pop(key, None)
    return tuple(sorted(d.items()))


def _ledger() -> KvmLedger | None:
    ctx = context()
    kvm = getattr(ctx, "kvm", None) if ctx is not None else None
    return None if kvm is None else kvm.ledger


# ------------------------------------------------------------------ host truth (no steps)
# These read the host model's objects directly (``__dict__``), never through fields, so
# they are not scheduling points. They describe what a page *is*, independent of how the
# variant under test classifies it.
def head_pfn(page: Any) -> int:
    """The pfn whose refcount a reference on ``page`` pins (its compound head)."""
    d = page.__dict__
    kind = d.get("kind")
    if kind is None:
        return int(d["pfn"])
    if kind == "thp":
        h = d.get("thp_head")
        return int(d["pfn"] if h is None else h)
    return int(d.get("head_pfn", d["pfn"]))


def _host() -> Any:
    ctx = context()
    return getattr(ctx, "host", None) if ctx is not None else None


def untracked_reason(page: Any) -> str:
    """Why A/D bits must not be set on ``page`` (I6), or "" if they may."""
    d = page.__dict__
    if d.get("zone") == "DEVICE":
        return "ZONE_DEVICE"
    h = _host()
    if h is not None and d.get("pfn") == getattr(h, "zero_pfn", None):
        return "ZERO_PAGE"
    if d.get("reserved"):
        return "PG_reserved"
    memmap = getattr(h, "memmap", {})
    head = memmap.get(head_pfn(page), page)
    if head.__dict__.get("refcount", 1) == 0:
        return "non-refcounted (count 0)"
    return ""


def page_is_thp_head(pfn: int) -> str:
    """Why ``pfn`` is not the head of a THP (I7), or "" if it is."""
    h = _host()
    page = getattr(h, "memmap", {}).get(pfn)
    if page is None:
        return "no struct page"
    d = page.__dict__
    if d.get("kind") != "thp":
        return f"{d.get('kind') or 'order-0'} page, not a THP"
    if d.get("thp_head") != pfn:
        return "not a THP head (split, or a tail)"
    return ""


def host_level_truth(kvm: Kvm, hva: int) -> int | None:
    """How many pages the primary MMU maps at ``hva`` with one entry (None: unknown)."""
    mm_ = kvm.mm
    pmd_of = getattr(mm_, "pmd", None)
    if pmd_of is None:
        return None
    pmd = pmd_of(hva)
    if pmd is None:
        return 1
    val = pmd.__dict__.get("val")
    if getattr(val, "huge", False):
        return int(mm_.pmd_pages)
    return 1


# ------------------------------------------------------------------ the host's hooks
#: files whose functions are the refcount primitives (and this ledger), not their callers
_PRIMITIVE_FILES = frozenset(
    __file__.rsplit("/", 2)[0] + f for f in ("/mm/page.py", "/mm/memmap.py", "/kvm/ghost.py"))


def subscribe(kvm: Kvm, host: Any) -> None:
    """Set-up: follow the host's refcount and A/D primitives for ``kvm``'s ledger.

    Every get and put a primitive makes for an owner that is not the host's own
    (``Host.host_owners``: ``mapping``, ``memmap_init``, ...) is KVM's: a reference of
    ``kvm`` or of a vCPU context (``vcpu0:fault``, ``vcpu0:map``, your own
    ``vcpu0:gpc``). So no kernel function, base or override, records references by hand,
    and none can forget to; the put is attributed to the kernel function that called the
    primitive (an override under the name it replaces).
    """
    host.ref_hooks.append(lambda page, owner, delta: ref_changed(kvm, host, page, owner, delta))
    host.ad_hooks.append(lambda page, what: ad_set(kvm, page, what))
    host.pte_hooks.append(lambda pte, val: pte_seen(kvm, pte, val))
    host.free_hooks.append(lambda page: page_freed(kvm, page))
    host.map_hooks.append(lambda event, km: kernel_mapped(kvm, host, event, km))


def ref_changed(kvm: Kvm, host: Any, page: Any, owner: str, delta: int) -> None:
    """The host's hook: ``owner`` took (``delta`` +1) or is about to drop (-1) a reference
    on ``page`` (a compound head). Nothing for the host's own owners. (A get on refcount 0
    needs nothing here: ``get_page`` itself fails with no-put-unreferenced.)"""
    if owner in host.host_owners:
        return
    if delta > 0:
        _taken(kvm.ledger, page, owner)
    else:
        _dropping(kvm.ledger, page, owner)


def ad_set(kvm: Kvm, page: Any, what: str) -> None:
    """The host's hook: ``what`` (SetPageDirty, mark_page_accessed) is about to set a bit on
    ``page``: record I6 if the page is one the kernel does not track."""
    why = untracked_reason(page)
    if why:
        _record(kvm.ledger, EV_AD_UNTRACKED, head_pfn(page), f"{what} on {why} page")


def _taken(led: KvmLedger, page: Any, owner: str) -> None:
    """KVM now holds one more reference on ``page``.

    I1: an owner outside every operation (see :func:`owner_begin`) that takes a reference
    leaks it from this step on.
    """
    part = led.part(owner)
    part.refs = tadd(part.refs, (head_pfn(page), owner), 1)
    if owner not in part.active:
        check_owner_leaks(led, owner)


def _dropping(led: KvmLedger, page: Any, owner: str) -> None:
    """KVM is about to put one reference on ``page``; fail if ``owner`` holds none, naming
    the kernel function that puts (walking the stack only then)."""
    key = (head_pfn(page), owner)
    part = led.part(owner)
    if tget(part.refs, key) <= 0:
        why = model_caller(_PRIMITIVE_FILES) or "put_page"
        holders = [f"{o} x{n}" for (p, o), n in led.refs if p == key[0]]
        held = ", ".join(holders) if holders else "nobody in KVM"
        fail(
            NO_PUT_UNREFERENCED,
            f"{why}: {owner} puts page pfn {key[0]:#x} but holds no reference on it "
            f"(KVM references on it: {held})",
        )
    part.refs = tadd(part.refs, key, -1)
    check_maps_pinned(led, owner)


def event(kind: str, pfn: int, detail: str = "") -> None:
    """Record an event (a WARN, an A/D update on an untracked page, ...)."""
    led = _ledger()
    if led is None:
        return
    _record(led, kind, pfn, detail)


def _record(led: KvmLedger, kind: str, pfn: int, detail: str, who: str = "") -> None:
    led.events = led.events | {(kind, pfn, detail, who)}


def depends_on(obj: Any, field: str) -> None:
    """A hook decided something from ghost ``obj.field``: rewrite it unchanged (no step).

    Ghost reads leave no footprint; the ghost write does, and conflicts with every write of
    the field, so the search orders this step against the steps that change it.
    """
    setattr(obj, field, getattr(obj, field))


def warn(function: str, pfn: int, detail: str = "") -> None:
    """A ``WARN``/``WARN_ON_ONCE`` in ``function`` fired (visible as an event)."""
    event(EV_WARN + function, pfn, detail)


def ref_taken(page: Any, owner: str) -> None:
    """No longer needed (a no-op): ``get_page`` and gup record KVM's references
    (:func:`subscribe`). Kept so that models written before keep working."""
    _obsolete("ref_taken")


def ref_dropping(page: Any, owner: str, why: str) -> None:
    """No longer needed (a no-op): ``put_page`` checks and records KVM's puts."""
    _obsolete("ref_dropping")


def ad_update(page: Any, what: str) -> None:
    """No longer needed (a no-op): ``SetPageDirty``/``mark_page_accessed`` record I6."""
    _obsolete("ad_update")


def get_on_dead_page(page: Any) -> None:
    """No longer needed (a no-op): ``get_page`` records I2 (a get on refcount 0)."""
    _obsolete("get_on_dead_page")


def _obsolete(name: str) -> None:
    warnings.warn(f"ghost.{name}() does nothing now: the page refcount and A/D primitives "
                  "record what it recorded; remove the call", DeprecationWarning, stacklevel=3)


def owner_begin(owner: str) -> None:
    """``owner`` enters an operation that may take references (a fault, a map)."""
    led = _ledger()
    if led is not None:
        part = led.part(owner)
        part.active = part.active | {owner}
        if part.looked:
            part.looked = ()


def owner_end(owner: str) -> None:
    """``owner``'s operation returned: from now on it must hold no reference (I1)."""
    led = _ledger()
    if led is not None:
        part = led.part(owner)
        part.active = part.active - {owner}
        if part.looked:
            part.looked = ()  # what the operation saw: dead now, must not split states
        check_owner_leaks(led, owner)


def check_owner_leaks(led: KvmLedger, owner: str) -> None:
    """I1 at the step an owner becomes idle: record a leak for every reference it holds.

    An idle owner's references cannot change (only its own thread takes and drops them), so
    a leak that is not reported here stays until the end and the final check reports it.
    The deferral of :func:`teardown_owns` is kept: whether a teardown that waits for the
    page's references has begun is decided at this step (the teardown flag only goes from
    False to True, and this step depends on its write), so a leak is reported once, by its
    first consequence: here when the owner returns before the teardown begins, as the
    teardown's hang (or the final check) when it returns after.
    """
    for (pfn, o), n in led.part(owner).refs:
        if o != owner or n <= 0:
            continue
        pgmap = _pgmap(pfn)
        if pgmap is not None:
            depends_on(pgmap, "teardown")
        if teardown_owns(pfn):
            continue
        _record(led, EV_LEAK, pfn, _leak(owner, n, pfn), owner)


def _pgmap(pfn: int) -> Any:
    page = getattr(_host(), "memmap", {}).get(pfn)
    if page is None or page.__dict__.get("zone") != "DEVICE":
        return None
    return page.__dict__.get("pgmap")


def fault_retried() -> None:
    """A fault returned RET_PF_RETRY: it overlapped an invalidation."""
    led = _ledger()
    if led is not None:
        led.retries = led.retries + 1


def kernel_mapped(kvm: Kvm, host: Any, event: str, km: Any) -> None:
    """The host's hook: a kernel mapping (:mod:`pfnlab.mm.kmap`) of ``km.owner`` was made
    (``map``), used (``access``) or is being torn down (``unmap``). Nothing for the host's
    own owners. KVM's mappings (``kvm_vcpu_map``) hold no reference of their own: I9
    checks, at every access and unmap, that the owner holds one on the page."""
    owner = km.owner
    if owner in host.host_owners:
        return
    led = kvm.ledger
    entry = (owner, -1 if km.gfn is None else km.gfn, km.pfn)
    if event == MAP:
        part = led.part(owner)
        part.maps = part.maps | {entry}
        why = freed_reason(km.pfn, kvm.norefs)
        if why:
            _record(led, EV_SPTE_TO_FREED, km.pfn,
                    f"{owner} kvm_vcpu_map of {_what(entry)} refers to pfn {km.pfn:#x} "
                    f"but {why}")
    elif event == ACCESS:
        check_maps_pinned(led, owner)
    else:
        check_maps_pinned(led, owner)
        part = led.part(owner)
        part.maps = part.maps - {entry}


def _what(entry: tuple[str, int, int]) -> str:
    """``gfn 0x1`` for a mapping of a guest page, else ``pfn 0x104``."""
    return f"gfn {entry[1]:#x}" if entry[1] >= 0 else f"pfn {entry[2]:#x}"


def check_maps_pinned(led: KvmLedger, owner: str) -> None:
    """I9 at the step it can arise: every live map of ``owner`` on a memmap page holds a
    reference of ``owner`` on the (head) page. Only ``owner``'s thread changes its maps and
    references, so program order fixes what this sees."""
    memmap = getattr(_host(), "memmap", {})
    part = led.part(owner)
    for o, gfn, pfn in sorted(part.maps):
        if o != owner:
            continue
        page = memmap.get(pfn)
        if page is None:
            continue
        if tget(part.refs, (head_pfn(page), o)) <= 0:
            what = f"gfn {gfn:#x} (pfn {pfn:#x})" if gfn >= 0 else f"pfn {pfn:#x}"
            _record(led, EV_MAP_UNPINNED, pfn, f"{o} maps {what} without holding a reference")


# ------------------------------------------------------------------ I4 and I5 where they arise
def freed_reason(pfn: int, norefs: frozenset[int] = frozenset()) -> str:
    """Why ``pfn``'s page counts as freed (I5), or "" (no steps, no recorded reads).

    Freed: the memmap was removed, or the (head) page is at refcount 0 (back in the
    allocator or returned to its pgmap), unless its head pfn is in ``norefs`` (pages that
    are legitimately at 0, e.g. non-refcounted VM_PFNMAP pages).
    """
    memmap = getattr(_host(), "memmap", {})
    page = memmap.get(pfn)
    if page is None:
        return ""
    hp = head_pfn(page)
    head = memmap.get(hp, page)
    if is_freed(page) or is_freed(head):
        return "its memmap was removed"
    if head.__dict__["refcount"] == 0 and hp not in norefs:
        return "its page was freed (refcount 0)"
    return ""


def refcount_zero_heads(host: Any) -> frozenset[int]:
    """Head pfns at refcount 0 now (at set-up: non-refcounted pages, exempt from I5)."""
    return frozenset(
        pfn
        for pfn, p in host.memmap.items()
        if head_pfn(p) == pfn and p.__dict__["refcount"] == 0
    )


def _stale(kvm: Kvm, sp: Any, epoch: Any, active: Any) -> str:
    val = sp.__dict__["spte"]
    origin = sp.__dict__["origin"]
    if val is None or origin is None:
        return ""
    for hva, ep in origin[1]:
        if tget(epoch, hva) != ep and tget(active, hva) == 0:
            return (
                f"{sp.name} maps pfn {val.pfn:#x} (installed by {origin[0]}) but hva "
                f"{hva:#x} was invalidated after the pfn was looked up"
            )
    return ""


def pte_seen(kvm: Kvm, pte: Any, val: Any) -> None:
    """The host's hook: the running thread read ``val`` from page-table entry ``pte``. A
    vCPU inside an operation records, for every hva the entry maps, the pfn it saw there
    and the hva's epoch before the invalidations that may still change it, between their
    start and the call of their end (``changing``) (``OwnerLedger.looked``)."""
    from pfnlab.mm.vma import PteVal

    if not isinstance(val, PteVal):
        return
    led = kvm.ledger
    part = led.parts.get(current_thread() or "")
    if part is None or not part.active:
        return
    epoch, changing = led.epoch, led.changing
    seen = {(h, p): e for h, p, e in part.looked}
    for i in range(pte.npages if val.huge else 1):
        h = pte.hva + i
        # an invalidation between its start and the call of its end may still change the
        # entry without telling KVM again: the pfn is derived from before it. Which side
        # of that call this read is on decides the epoch: the read depends on it
        n = tget(changing, h)
        if n:
            depends_on(led, "changing")
        seen[(h, val.pfn + i)] = tget(epoch, h) - n
    looked = tuple(sorted((h, p, e) for (h, p), e in seen.items()))
    if looked != part.looked:
        part.looked = looked


def spte_written(sp: Any, old: Any, new: Any) -> None:
    """The hook of ``Spte.spte`` (sptefield.py): a model thread wrote ``new`` over ``old``.

    A zap forgets the origin. A present value gets its origin from what the writing
    thread's operation saw (``OwnerLedger.looked``) for the hvas the SPTE maps, and is
    checked as installed (:func:`spte_installed`); a write that keeps the pfn by a thread
    that saw none of it (write protection, A/D harvesting) keeps the origin it had."""
    ctx = context()
    kvm = getattr(ctx, "kvm", None) if ctx is not None else None
    if kvm is None:
        return
    if new is None:
        if sp.__dict__["origin"] is not None:
            sp.origin = None
        return
    led = kvm.ledger
    who = current_thread() or ""
    part = led.parts.get(who)
    looked = part.looked if part is not None else ()
    slot = next((s for s in kvm.__dict__["memslots"] if s.id == sp.slot_id), None)
    n = kvm.pages_per_hpage(sp.level)
    base = sp.gfn & ~(n - 1)
    seen = {(h, p): e for h, p, e in looked}
    entries = []
    if slot is not None:
        for i in range(n):
            if not slot.contains(base + i):
                continue
            h = slot.gfn_to_hva(base + i)
            e = seen.get((h, new.pfn + i))
            if e is not None:
                entries.append((h, e))
    if not entries and old is not None and old.pfn == new.pfn:
        return  # the same translation, not derived again: its origin stands
    owners = sorted(part.active) if part is not None else []
    sp.origin = (owners[0] if len(owners) == 1 else who, tuple(entries))
    spte_installed(kvm, sp)


def spte_installed(kvm: Kvm, sp: Any) -> None:
    """An SPTE was just installed in ``sp`` (:func:`spte_written`): I4 if its origin is
    stale, I5 if its page is freed, I11 if writable on a read-only mapping.

    Runs in the step that wrote the SPTE (under mmu_lock). An ``invalidate_range_start``
    bumps ``epoch`` and ``inval_active`` together outside mmu_lock, in a step not ordered
    with this one; its return (where I4 is checked too) is ordered by mmu_lock. If every
    hva's epoch is still the origin's, the decision is "not stale" whichever way such a
    start is ordered against this step (before: the hva is active; after: nothing changed
    yet), so the step depends on the epochs only when some hva was invalidated since the
    lookup, where the order decides.
    """
    led = kvm.ledger
    origin = sp.__dict__["origin"]
    epoch = led.epoch
    if origin is not None and any(tget(epoch, h) != ep for h, ep in origin[1]):
        depends_on(led, "epoch")
        depends_on(led, "inval_active")
    why = _stale(kvm, sp, epoch, led.inval_active)
    if why:
        _record(led, EV_STALE_SPTE, sp.__dict__["spte"].pfn, why)
    val = sp.__dict__["spte"]
    if val is not None:
        gone = freed_reason(val.pfn, kvm.norefs)
        if gone:
            _record(led, EV_SPTE_TO_FREED, val.pfn, f"{sp.name} maps pfn {val.pfn:#x} but {gone}")
        ro = _readonly_hva(kvm, origin) if val.writable else None
        if ro is not None:
            # I11: the VMA's VM_WRITE is set up once (no mprotect in the model), so the
            # decision reads nothing another thread writes
            _record(led, EV_WRITABLE_RO, val.pfn,
                    f"{sp.name} maps pfn {val.pfn:#x} writable, but the host maps hva "
                    f"{ro:#x} read-only")


def _readonly_hva(kvm: Kvm, origin: Any) -> int | None:
    """An hva of the SPTE's origin whose VMA lacks VM_WRITE (None if every one is writable)."""
    from pfnlab.mm.vma import VM_WRITE

    if origin is None:
        return None
    vmas = kvm.mm.__dict__["vmas"]
    for hva, _ep in origin[1]:
        for vma in vmas:
            if vma.start <= hva < vma.end and not vma.flags & VM_WRITE:
                return int(hva)
    return None


def invalidation_returned(kvm: Kvm) -> None:
    """An ``invalidate_range_start`` returned (``inval_active`` just dropped): I4 for every
    present SPTE whose origin is older than the epoch of an hva no longer invalidated.

    SPTEs change under mmu_lock, which the callback released in this very step; the
    rewrite of their origins keeps the order explicit anyway.
    """
    led = kvm.ledger
    epoch, active = led.epoch, led.inval_active
    for sp in kvm.sptes.values():
        depends_on(sp, "origin")
        why = _stale(kvm, sp, epoch, active)
        if why:
            _record(led, EV_STALE_SPTE, sp.__dict__["spte"].pfn, why)


def page_freed(kvm: Kvm, page: Any) -> None:
    """Host free hook: ``page`` just reached refcount 0, left it, or lost its memmap.

    I5 for every present SPTE and live map whose page is now freed. The decision reads every
    SPTE and map, so this step depends on all of them (installs and zaps rewrite the
    origins, maps and unmaps the ledger's ``maps``).
    """
    led = kvm.ledger
    for part in led.all_parts():
        depends_on(part, "maps")
    for sp in kvm.sptes.values():
        depends_on(sp, "origin")
        val = sp.__dict__["spte"]
        if val is None:
            continue
        why = freed_reason(val.pfn, kvm.norefs)
        if why:
            _record(led, EV_SPTE_TO_FREED, val.pfn, f"{sp.name} maps pfn {val.pfn:#x} but {why}")
    for owner, gfn, pfn in sorted(led.maps):
        why = freed_reason(pfn, kvm.norefs)
        if why:
            _record(led, EV_SPTE_TO_FREED, pfn,
                    f"{owner} kvm_vcpu_map of gfn {gfn:#x} refers to pfn {pfn:#x} but {why}")


# ------------------------------------------------------------------ checks
# Checks read state with plain attribute reads: inside a check the engine records every
# Field and Ghost read, and re-evaluates the check when a step (or a ghost update) changes it.
def observe(obj: Any, field: str) -> Any:
    """Read ``obj.field`` (shared or ghost) inside a check; the engine records the read."""
    return getattr(obj, field)


def check_refs_balanced(kvm: Kvm) -> str | None:
    """I1 (final check): KVM holds no page reference once every thread finished."""
    refs = observe(kvm.ledger, "refs")
    if not refs:
        return None
    held = ", ".join(f"pfn {p:#x} by {o} x{n}" for (p, o), n in refs)
    return f"KVM still holds page references: {held}"


def check_no_stale_spte(kvm: Kvm) -> str | None:
    """I4 (invariant): no present SPTE maps a pfn the primary MMU invalidated since."""
    led = kvm.ledger
    epoch = observe(led, "epoch")
    active = observe(led, "inval_active")
    for sp in kvm.sptes.values():
        val = observe(sp, "spte")
        origin = observe(sp, "origin")
        if val is None or origin is None:
            continue
        for hva, ep in origin[1]:
            if tget(epoch, hva) != ep and tget(active, hva) == 0:
                return (
                    f"{sp.name} maps pfn {val.pfn:#x} (installed by {origin[0]}) but hva "
                    f"{hva:#x} was invalidated after the pfn was looked up"
                )
    return None


def teardown_owns(pfn: int) -> str:
    """Why a leak on ``pfn`` is left to the teardown to report, or "" (no steps).

    A device page whose dev_pagemap teardown has begun (``DevPagemap.teardown``), or a page
    whose memmap is already gone: the leak shows up as the teardown's hang (I8, mm 5.4) or
    at the end of the execution (final :func:`check_refs_balanced`).
    """
    h = _host()
    page = getattr(h, "memmap", {}).get(pfn)
    if page is None:
        return ""
    if is_freed(page):
        return "memmap removed"
    if page.__dict__.get("zone") == "DEVICE":
        pgmap = page.__dict__.get("pgmap")
        if pgmap is not None and observe(pgmap, "teardown"):
            return f"{pgmap.name} teardown in progress"
    return ""


def check_idle_owners_hold_nothing(kvm: Kvm) -> str | None:
    """I1 (invariant): a fault or map that returned holds no page reference.

    A leak on a page under teardown is left to the teardown (see :func:`teardown_owns`), so
    that one leak is reported once, by its first consequence.
    """
    led = kvm.ledger
    active = observe(led, "active")
    for (pfn, owner), n in observe(led, "refs"):
        if owner in active or n <= 0 or teardown_owns(pfn):
            continue
        return Violation(_leak(owner, n, pfn), leaked_by=owner)
    return None


def _leak(owner: str, n: int, pfn: int) -> str:
    """I1's sentence: an operation that returned holding references (its owner is the
    finding's ``details["leaked_by"]``)."""
    return f"{owner} returned still holding {n} reference(s) on pfn {pfn:#x} (leaked)"


def check_no_spte_to_freed(kvm: Kvm, norefs: frozenset[int] = frozenset()) -> str | None:
    """I5 (invariant): no present SPTE / kvm_vcpu_map mapping refers to a freed page.

    Freed: the memmap was removed, or the (head) page is at refcount 0, i.e. back in the
    allocator or returned to its pgmap. ``norefs``: head pfns that are legitimately at
    refcount 0 (non-refcounted VM_PFNMAP pages), exempt from the refcount test.
    """
    h = _host()
    memmap = getattr(h, "memmap", {})

    def gone(pfn: int) -> str:
        page = memmap.get(pfn)
        if page is None:
            return ""
        hp = head_pfn(page)
        head = memmap.get(hp, page)
        count = observe(head, "refcount")  # recorded: re-checked when it changes or is freed
        if is_freed(page) or is_freed(head):
            return "its memmap was removed"
        if count == 0 and hp not in norefs:
            return "its page was freed (refcount 0)"
        return ""

    for sp in kvm.sptes.values():
        val = observe(sp, "spte")
        if val is None:
            continue
        why = gone(val.pfn)
        if why:
            return f"{sp.name} maps pfn {val.pfn:#x} but {why}"
    for owner, gfn, pfn in sorted(observe(kvm.ledger, "maps")):
        why = gone(pfn)
        if why:
            return f"{owner} kvm_vcpu_map of gfn {gfn:#x} refers to pfn {pfn:#x} but {why}"
    return None


def check_events(kvm: Kvm, prop: str) -> str | None:
    """No recorded event (WARN, A/D, THP, dead get) that violates property ``prop``."""
    for kind, pfn, detail, who in sorted(observe(kvm.ledger, "events")):
        if event_property(kind) == prop:
            if kind == EV_LEAK:
                return Violation(detail, leaked_by=who)
            if kind in _SENTENCE_KINDS:
                return detail
            return f"{kind} on pfn {pfn:#x}: {detail}" if detail else f"{kind} on pfn {pfn:#x}"
    return None


def check_no_events(kvm: Kvm, kinds: Iterable[str], prefix: bool = False) -> str | None:
    """No event of these kinds (``prefix=True``: kinds are prefixes, e.g. ``EV_WARN``)."""
    ks = tuple(kinds)
    for kind, pfn, detail, _who in sorted(observe(kvm.ledger, "events")):
        if (kind.startswith(ks) if prefix else kind in ks):
            return f"{kind} on pfn {pfn:#x}: {detail}" if detail else f"{kind} on pfn {pfn:#x}"
    return None


def check_no_warn(kvm: Kvm) -> str | None:
    """No WARN in KVM code fired."""
    return check_no_events(kvm, (EV_WARN,), prefix=True)


def check_vcpu_map_refs(kvm: Kvm) -> str | None:
    """I9 (invariant): every live kvm_vcpu_map mapping of a memmap page holds a reference."""
    led = kvm.ledger
    host = getattr(context(), "host", None)
    memmap = getattr(host, "memmap", {})
    refs = observe(led, "refs")
    for owner, gfn, pfn in sorted(observe(led, "maps")):
        page = memmap.get(pfn)
        if page is None:
            continue
        if tget(refs, (head_pfn(page), owner)) <= 0:
            return f"{owner} maps gfn {gfn:#x} (pfn {pfn:#x}) without holding a reference"
    return None


def check_notifier_balanced(kvm: Kvm) -> str | None:
    """I10 (final check): brackets balanced, count back to 0, seq bumped at every end.

    Not checked on a destroyed VM: once mmu_notifier_unregister removed it, an
    invalidation whose start it saw does not deliver the end, and nothing reads the count.
    """
    if is_freed(kvm):
        return None
    led = kvm.ledger
    starts, ends = observe(led, "notifier_starts"), observe(led, "notifier_ends")
    count = observe(kvm, "mmu_notifier_count")
    if starts != ends or count != 0:
        return (
            f"{starts} invalidate_range_start vs {ends} _end; mmu_notifier_count is {count}"
        )
    seq = observe(kvm, "mmu_notifier_seq")
    if seq < ends:
        return f"mmu_notifier_seq {seq} < {ends} invalidate_range_end calls"
    return None
