"""The ledger's state: one :class:`KvmLedger` per VM, ``kvm.ledger``, split into per-vCPU parts.

Its fields are :class:`~pfnlab.explore.Ghost` fields: updating them is not a scheduling
point, they never steer the model, and every update commutes (counter increments, set
insertions).

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
    A frozenset of :class:`~pfnlab.kvm.ghost.events.LedgerEvent`
    ``(kind, pfn, detail, who, violates)``: things that happened and the property each
    violates. Kinds are the ``EV_*`` constants of :mod:`pfnlab.kvm.ghost.events`: every
    ``WARN`` that fires (``"WARN:<function>"``), A/D bits set on a page without the
    machinery (I6), a THP reference shift or huge SPTE on a page that is not a THP / not
    mapped huge (I7), and the violations of I1, I4, I5 and I9 (a ``get_page`` on refcount
    0, I2, fails in ``get_page`` itself), recorded at the step where they arise (see
    :mod:`pfnlab.kvm.ghost`). ``who`` is the owner a leak (I1) is of, "" for the other kinds.
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
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from pfnlab.explore import Ghost, Shared, Violation, context

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
#: kinds whose detail is the whole sentence of the finding (the violations the hooks record)
SENTENCE_KINDS = frozenset({EV_LEAK, EV_STALE_SPTE, EV_SPTE_TO_FREED, EV_MAP_UNPINNED,
                            EV_WRITABLE_RO})


class LedgerEvent(NamedTuple):
    """One recorded event: its kind, the pfn it is about, what happened, the owner a leak
    is of ("" for the other kinds), and the id of the property it violates."""

    kind: str
    pfn: int
    detail: str
    who: str
    violates: str

    def message(self) -> str | Violation:
        """The finding's message (a leak also names its owner, ``leaked_by``)."""
        if self.kind == EV_LEAK:
            return Violation(self.detail, leaked_by=self.who)
        if self.kind in SENTENCE_KINDS:
            return self.detail
        return self.title()

    def title(self) -> str:
        """``KIND on pfn 0x..: detail``."""
        head = f"{self.kind} on pfn {self.pfn:#x}"
        return f"{head}: {self.detail}" if self.detail else head


class OwnerLedger(Shared):
    """The per-owner part of the ledger: ``refs``, ``active`` and ``maps`` of its owners.

    Ghost writes conflict like writes in the search, so one field updated by every vCPU
    would order all their gets, puts, maps and operation brackets against each other. Each
    vCPU's owners (``vcpuN:fault``, ``vcpuN:map``: one thread) get their own part; the
    decisions of the hooks read only the part of the owner they are about.

    ``active`` (the owners inside an operation) is a ghost field too, though only the
    owner's own thread changes it and it is a function of that thread's position: a
    checkpoint restores ghost fields with the rest of the state, and a plain attribute
    would keep the value of the thread's future after the search went back to a state
    before it (one thread's entry to its first operation seen in an order where it has not
    run yet). No other thread writes it, so it orders no steps.
    """

    refs: Ghost[tuple[tuple[tuple[int, str], int], ...]] = Ghost(())
    maps: Ghost[frozenset[tuple[str, int, int]]] = Ghost(frozenset())
    #: ``((hva, pfn, epoch), ...)``: the page-table reads of the current operation of this
    #: part's thread (a vCPU's), the latest per (hva, pfn); see the module docstring
    looked: Ghost[tuple[tuple[int, int, int], ...]] = Ghost(())
    #: the owners of this part inside an operation (:func:`~pfnlab.kvm.ghost.owner_begin`)
    active: Ghost[frozenset[str]] = Ghost(frozenset())

    def __init__(self, name: str) -> None:
        super().__init__(name)


class KvmLedger(Shared):
    """Ghost bookkeeping of one VM (see the module docstring for each field).

    ``refs``, ``active`` and ``maps`` are the union of the :class:`OwnerLedger` parts: one
    per vCPU (see :meth:`add_parts`) and one for any other owner.
    """

    events: Ghost[frozenset[LedgerEvent]] = Ghost(frozenset())
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


def current_ledger() -> KvmLedger | None:
    """The ledger of the VM in the running execution's context (None without one)."""
    ctx = context()
    kvm = getattr(ctx, "kvm", None) if ctx is not None else None
    return None if kvm is None else kvm.ledger


def current_host() -> Any:
    """The host in the running execution's context (None without one)."""
    ctx = context()
    return getattr(ctx, "host", None) if ctx is not None else None


def depends_on(obj: Any, field: str) -> None:
    """A hook decided something from ghost ``obj.field``: rewrite it unchanged (no step).

    Ghost reads leave no footprint; the ghost write does, and conflicts with every write of
    the field, so the search orders this step against the steps that change it.
    """
    setattr(obj, field, getattr(obj, field))


def observe(obj: Any, field: str) -> Any:
    """Read ``obj.field`` (shared or ghost) inside a check; the engine records the read."""
    return getattr(obj, field)
