"""virt/kvm/pfncache.c v5.17-v6.0: ``struct gfn_to_pfn_cache``, its invalidation, and the
built-in property of every mapping KVM keeps of a guest page without relying on a page
reference.

KVM keeps some host pfns and relies on the MMU notifier to drop them: the APIC-access page
address in every VMCS (arch/x86/kvm/vmx: ``kvm_vcpu_reload_apic_access_page`` looks it up,
writes ``APIC_ACCESS_ADDR`` and puts the page, "the MMU notifier will call us again if it
is migrated"), and the ``gfn_to_pfn_cache`` of virt/kvm/pfncache.c (v5.17 on: v5.17 kept
a page reference as well, v6.0 none). Such a mapping is correct only if every
invalidation of its hva zaps it or makes it refreshed before it is used again.
:class:`PfnCache` is that mapping; this file has the invalidation
(``gfn_to_pfn_cache_invalidate_start``), a use (:func:`touch_gpc`) and the simple steps a
model composes (look up, publish); the kernel's refreshes are in ``pfncache_refresh.py``
(v6.0) and ``pfncache_v5_17.py``, the notifier that calls the invalidation in
``pfncache_notifier.py``. The property ``secondary-coherent`` (I12) is checked for every
cache of a VM:

    whenever a cache is valid and no invalidation of its hva is in progress (between the
    host's ``invalidate_range_start`` and the return of its ``invalidate_range_end``, as
    KVM's notifier sees them whatever a variant does), its pfn is the pfn the host maps at
    that hva; and no use through a cache (:func:`touch_gpc`) reads a pfn the host no
    longer maps there (a cache used after its invalidation).

Inside an invalidation the mapping may lag (as a CPU's TLB may until the flush); once the
invalidation is over it must not. The check is an invariant over the cache's fields, the
host PTE and the ledger's ``bracket`` count, so the search orders every step that changes
one of them against the others (an unstable invariant: see docs/reductions.md, section 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pfnlab.explore import Field, Ghost, Lock, Shared
from pfnlab.kernel.deprecation import owner_parameter_removed
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kvm.ghost import tget
from pfnlab.kvm.hva import __gfn_to_pfn_memslot, gfn_to_memslot
from pfnlab.kvm.pfn import is_error_noslot_pfn, kvm_release_pfn_clean
from pfnlab.mm.vma import PteVal, entry_pfn

if TYPE_CHECKING:
    from pfnlab.kvm.kvm import Kvm


class PfnCache(Shared):
    """include/linux/kvm_types.h v6.0 ``struct gfn_to_pfn_cache`` (v5.17 on; or the VMCS's
    APIC-access address): a reference-less mapping of guest page ``gfn``.

    Fields, as the kernel's: ``gpa`` (the model's addresses are page numbers, so the gpa of
    ``gfn`` is ``gfn``), ``uhva`` (the userspace hva of ``gpa``; None is
    ``KVM_HVA_ERR_BAD``), ``pfn`` (None is ``KVM_PFN_ERR_FAULT``), ``khva`` (the kernel
    address of the pfn's memory: on x86-64 ``kmap`` is ``page_address``, so the model keeps
    the pfn it addresses), ``valid`` and ``active``. ``lock`` is ``gpc->lock`` and
    ``refresh_lock`` the v6.0 mutex serializing refreshes (93984f19e7bc).

    ``gpc->lock`` is an rwlock in the kernel; here it is a :class:`~pfnlab.explore.Lock`,
    so two readers exclude each other. The bugs modelled are orders of a writer (refresh,
    invalidation, unmap) against a reader or another writer, which a lock keeps; only
    readers running at once would be lost, and they change no field. (For a model's own
    objects, :class:`~pfnlab.explore.RwLock` is an ``rwlock_t`` whose readers hold it
    together; the library's cache functions take this lock as an exclusive one.)

    Create it at set-up; it registers with ``kvm`` (``kvm.pfn_caches``, the kernel's
    ``kvm->gpc_list``), whose ``secondary-coherent`` check (I12) covers it. ``hva`` is the
    hva of ``gfn`` in its memslot (set-up), which a refresh stores in ``uhva``.
    """

    valid: Field[bool] = Field(False)
    pfn: Field[int | None] = Field(None)
    gpa: Field[int | None] = Field(None)
    uhva: Field[int | None] = Field(None)
    khva: Field[int | None] = Field(None)
    active: Field[bool] = Field(False)
    #: ledger (I12): what a use through the cache found, if the host no longer maps its pfn
    stale_use: Ghost[str | None] = Ghost(None)

    def __init__(self, kvm: Kvm, name: str, gfn: int) -> None:
        super().__init__(name)
        slot = gfn_to_memslot(kvm.memslots, gfn)
        if slot is None:
            raise ValueError(f"PfnCache {name!r}: gfn {gfn:#x} is in no memslot of {kvm.name}")
        self.kvm, self.gfn, self.hva = kvm, gfn, slot.gfn_to_hva(gfn)
        self.lock = Lock(f"{name}.lock")
        self.refresh_lock = Lock(f"{name}.refresh_lock")
        kvm.pfn_caches.append(self)


#: the kernel's name of :class:`PfnCache` (``struct gfn_to_pfn_cache``, v5.17 on)
gfn_to_pfn_cache = PfnCache


@kfunc
@owner_parameter_removed
def pfn_cache_lookup(gpc: PfnCache) -> int | None:
    """virt/kvm/pfncache.c v6.0 hva_to_pfn_retry, one attempt (no retry check): gup the
    page and put the reference at once (the cache holds none).

    Returns the pfn the host mapped at the cache's hva, or None (the lookup failed)."""
    slot = gfn_to_memslot(gpc.kvm.memslots, gpc.gfn)
    pfn, _writable = __gfn_to_pfn_memslot(slot, gpc.gfn, False, False, True)
    if is_error_noslot_pfn(pfn):
        return None
    kvm_release_pfn_clean(pfn)
    return pfn


@kfunc
def pfn_cache_publish(gpc: PfnCache, pfn: int | None) -> None:
    """virt/kvm/pfncache.c v6.0 kvm_gpc_refresh's publish: ``pfn`` becomes the cache's
    (valid when not None), under ``gpc->lock``."""
    gpc.lock.acquire()
    gpc.pfn = pfn
    gpc.valid = pfn is not None
    gpc.lock.release()


@kfunc
def gfn_to_pfn_cache_invalidate_start(kvm: Kvm, start: int, end: int) -> None:
    """virt/kvm/pfncache.c v5.17-v6.0: under its lock, mark invalid every cache that is
    valid with a pfn (not the ``KVM_PFN_ERR_FAULT`` placeholder) whose hva is in
    [start, end); its user refreshes it before the next use. (v5.17 tests under the read
    lock first and again under the write lock: the same outcome as one write-locked
    test. vCPU eviction for ``KVM_GUEST_USES_PFN``, v5.18, is not modelled.)"""
    for gpc in kvm.pfn_caches:
        gpc.lock.acquire()
        if gpc.valid and gpc.pfn is not None and start <= cache_hva(gpc) < end:
            gpc.valid = False
        gpc.lock.release()


def cache_hva(gpc: PfnCache) -> int:
    """The hva the cache maps: ``uhva`` once a refresh set it, else the set-up ``hva``
    (a cache whose fields a model sets by hand, as the VMCS's APIC-access address)."""
    uhva = gpc.uhva
    return gpc.hva if uhva is None else uhva


def touch_gpc(gpc: PfnCache) -> None:
    """A use of the cache's memory (through ``gpc->khva``), made under ``gpc->lock`` after
    ``kvm_gpc_check`` said valid. The ledger records, for I12, a use of a pfn the host no
    longer maps at the cache's hva: a cache used after its invalidation."""
    khva = gpc.khva
    host = _host_pfn(gpc.kvm, cache_hva(gpc))
    if khva is not None and host != khva and gpc.stale_use is None:
        now = "nothing" if host is None else f"pfn {host:#x}"
        gpc.stale_use = (f"{gpc.name} was used with pfn {khva:#x} after its invalidation: "
                         f"the host maps {now} at hva {cache_hva(gpc):#x}")


def check_secondary_coherent(kvm: Kvm) -> str | None:
    """I12 (module docstring): None when every valid cache outside an invalidation maps
    what the host maps and no cache was used after its invalidation; else what one maps
    (or was used with) and what the host maps."""
    brackets = kvm.ledger.bracket
    for gpc in kvm.pfn_caches:
        if gpc.stale_use is not None:
            return gpc.stale_use
        pfn = gpc.pfn
        if not gpc.valid or pfn is None or tget(brackets, gpc.hva) > 0:
            continue
        host = _host_pfn(kvm, gpc.hva)
        if host != pfn:
            now = "nothing" if host is None else f"pfn {host:#x}"
            return (f"{gpc.name} is valid with pfn {pfn:#x} after the invalidations of "
                    f"hva {gpc.hva:#x} are over, but the host maps {now} there")
    return None


def _host_pfn(kvm: Kvm, hva: int) -> int | None:
    """The pfn the host maps at ``hva`` (a huge PMD or the PTE; None if neither is a
    present mapping), read in a check."""
    mm: Any = kvm.mm
    pmd = mm.pmd(hva)
    val = pmd.val if pmd is not None else None
    if isinstance(val, PteVal) and val.huge:
        return entry_pfn(val, hva, mm.pmd_pages)
    pte = mm.ptes.get(hva)
    val = pte.val if pte is not None else None
    return int(val.pfn) if isinstance(val, PteVal) else None
