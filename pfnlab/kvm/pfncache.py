"""A KVM mapping of a guest page that holds no page reference, and its built-in property.

KVM keeps some host pfns without a reference on their pages: the APIC-access page address
in every VMCS (arch/x86/kvm/vmx: ``kvm_vcpu_reload_apic_access_page`` looks it up, writes
``APIC_ACCESS_ADDR`` and puts the page, "the MMU notifier will call us again if it is
migrated"), and the ``gfn_to_pfn_cache`` of virt/kvm/pfncache.c (v5.18 on). Such a mapping
is correct only if every invalidation of its hva zaps it or makes it refreshed before it
is used again. :class:`PfnCache` is that mapping, the helpers below are the kernel's
steps (look up, publish, invalidate), and the property ``secondary-coherent`` (I12) is
checked for every cache of a VM:

    whenever a cache is valid and no invalidation of its hva is in progress (between the
    host's ``invalidate_range_start`` and the return of its ``invalidate_range_end``, as
    KVM's notifier sees them whatever a variant does), its pfn is the pfn the host maps at
    that hva.

Inside an invalidation the mapping may lag (as a CPU's TLB may until the flush); once the
invalidation is over it must not. The check is an invariant over the cache's fields, the
host PTE and the ledger's ``bracket`` count, so the search orders every step that changes
one of them against the others (an unstable invariant: see docs/reductions.md, section 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pfnlab.explore import Field, Lock, Shared
from pfnlab.kernel.deprecation import owner_parameter_removed
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kvm.ghost import tget
from pfnlab.kvm.hva import __gfn_to_pfn_memslot, gfn_to_memslot
from pfnlab.kvm.pfn import is_error_noslot_pfn, kvm_release_pfn_clean
from pfnlab.mm.vma import PteVal, entry_pfn

if TYPE_CHECKING:
    from pfnlab.kvm.kvm import Kvm


class PfnCache(Shared):
    """A reference-less mapping of guest page ``gfn`` (``struct gfn_to_pfn_cache``, or the
    VMCS's APIC-access address): ``valid`` and the ``pfn`` it hands out.

    Create it at set-up; it registers with ``kvm`` (``kvm.pfn_caches``), whose
    ``secondary-coherent`` check covers it. ``lock`` is the cache's rwlock (``gpc->lock``).
    """

    valid: Field[bool] = Field(False)
    pfn: Field[int | None] = Field(None)

    def __init__(self, kvm: Kvm, name: str, gfn: int) -> None:
        super().__init__(name)
        slot = gfn_to_memslot(kvm.memslots, gfn)
        if slot is None:
            raise ValueError(f"PfnCache {name!r}: gfn {gfn:#x} is in no memslot of {kvm.name}")
        self.kvm, self.gfn, self.hva = kvm, gfn, slot.gfn_to_hva(gfn)
        self.lock = Lock(f"{name}.lock")
        kvm.pfn_caches.append(self)


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
    """virt/kvm/pfncache.c v5.18: mark every valid cache whose hva is in [start, end)
    invalid, under its lock (the vCPU refreshes it before the next use)."""
    for gpc in kvm.pfn_caches:
        if start <= gpc.hva < end:
            gpc.lock.acquire()
            gpc.valid = False
            gpc.lock.release()


def check_secondary_coherent(kvm: Kvm) -> str | None:
    """I12 (module docstring): None when every valid cache outside an invalidation maps
    what the host maps; else what one maps and what the host maps."""
    brackets = kvm.ledger.bracket
    for gpc in kvm.pfn_caches:
        if not gpc.valid or tget(brackets, gpc.hva) > 0:
            continue
        host = _host_pfn(kvm, gpc.hva)
        if host != gpc.pfn:
            now = "nothing" if host is None else f"pfn {host:#x}"
            return (f"{gpc.name} is valid with pfn {gpc.pfn:#x} after the invalidations of "
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
