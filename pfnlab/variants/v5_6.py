"""v5.6: the huge level comes from walking the host page tables; no reference shift.

Sean Christopherson, "KVM: x86/mmu: Walk host page tables to find THP mappings" series
(<20200108202448.9669-8-sean.j.christopherson@intel.com>), merged for v5.6:

- the fault no longer aligns the gfn down before gup: it pins the exact 4K page;
- ``kvm_mmu_hugepage_adjust`` picks the level from ``lookup_address_in_mm`` (only for
  ``PageCompound || kvm_is_zone_device_pfn`` pages: "Use huge pages for DAX-backed files",
  patch 14), and aligns a **local copy** of the pfn: the fault releases the original pfn,
  so the THP reference shift is gone and DAX can be mapped huge;
- ``kvm_mmu_zap_collapsible_spte`` zaps ``!reserved && (zone_device || PageCompound)``.
"""

from __future__ import annotations

from pfnlab import Variant, mm, register_variant
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kvm.fault import (
    RET_PF_EMULATE,
    RET_PF_ERROR,
    RET_PF_RETRY,
    __direct_map,
    try_async_pf,
)
from pfnlab.kvm.hva import gfn_to_memslot
from pfnlab.kvm.kvm import PT_DIRECTORY_LEVEL, PT_PAGE_TABLE_LEVEL, Kvm, Memslot, Spte, Vcpu
from pfnlab.kvm.notifier import mmu_notifier_retry
from pfnlab.kvm.pfn import (
    is_error_noslot_pfn,
    is_error_pfn,
    kvm_is_reserved_pfn,
    kvm_is_zone_device_pfn,
    kvm_release_pfn_clean,
)
from pfnlab.kvm.spte import drop_spte


@kfunc
def max_mapping_level(vcpu: Vcpu, slot: Memslot | None, gfn: int) -> int:
    """arch/x86/kvm/mmu/mmu.c v5.6: 4K if no slot, dirty logging, or lpage disallowed."""
    if slot is None or slot.dirty_logging:
        return PT_PAGE_TABLE_LEVEL
    if slot.lpage_disallowed(gfn, vcpu.kvm.hpage_pages):
        return PT_PAGE_TABLE_LEVEL
    return PT_DIRECTORY_LEVEL


@kfunc
def host_pfn_mapping_level(vcpu: Vcpu, slot: Memslot, gfn: int, pfn: int) -> int:
    """arch/x86/kvm/mmu/mmu.c v5.6: compound or ZONE_DEVICE pages: level of the host entry."""
    if not mm.PageCompound(mm.pfn_to_page(pfn)) and not kvm_is_zone_device_pfn(pfn):
        return PT_PAGE_TABLE_LEVEL
    return int(mm.lookup_address_in_mm(vcpu.kvm.mm, slot.gfn_to_hva(gfn)))


@kfunc
def kvm_mmu_hugepage_adjust(
    vcpu: Vcpu, slot: Memslot, gfn: int, max_level: int, pfn: int
) -> tuple[int, int]:
    """arch/x86/kvm/mmu/mmu.c v5.6: ``(level, pfn & ~mask)``; the caller's pfn is unchanged."""
    if max_level == PT_PAGE_TABLE_LEVEL:
        return (PT_PAGE_TABLE_LEVEL, pfn)
    if is_error_noslot_pfn(pfn) or kvm_is_reserved_pfn(pfn):
        return (PT_PAGE_TABLE_LEVEL, pfn)
    level = host_pfn_mapping_level(vcpu, slot, gfn, pfn)
    if level == PT_PAGE_TABLE_LEVEL:
        return (level, pfn)
    level = min(level, max_level)
    mask = vcpu.kvm.pages_per_hpage(level) - 1
    return (level, pfn & ~mask)


def tdp_page_fault(vcpu: Vcpu, gfn: int, write: bool) -> int:
    """arch/x86/kvm/mmu/mmu.c v5.6: pin the exact page; map huge from a local pfn copy."""
    kvm = vcpu.kvm
    slot = gfn_to_memslot(kvm.memslots, gfn)
    max_level = max_mapping_level(vcpu, slot, gfn)
    mmu_seq = kvm.mmu_notifier_seq
    pfn, map_writable = try_async_pf(vcpu, slot, gfn, write)
    if is_error_pfn(pfn):
        return RET_PF_ERROR
    if slot is None:
        return RET_PF_EMULATE
    r = RET_PF_RETRY
    kvm.mmu_lock.acquire()
    if not mmu_notifier_retry(kvm, mmu_seq):
        level, map_pfn = kvm_mmu_hugepage_adjust(vcpu, slot, gfn, max_level, pfn)
        r = __direct_map(vcpu, slot, gfn, write, map_writable, level, map_pfn)
    kvm.mmu_lock.release()
    kvm_release_pfn_clean(pfn)
    return r


def kvm_mmu_zap_collapsible_spte(kvm: Kvm, slot: Memslot, sptep: Spte) -> bool:
    """arch/x86/kvm/mmu/mmu.c v5.6: zap if !reserved && (ZONE_DEVICE || PageCompound)."""
    val = sptep.spte
    if val is None:
        return False
    pfn = val.pfn
    if not kvm_is_reserved_pfn(pfn) and (
        kvm_is_zone_device_pfn(pfn) or mm.PageCompound(mm.pfn_to_page(pfn))
    ):
        drop_spte(kvm, sptep)
        return True
    return False


VARIANT = register_variant(
    Variant(
        name="v5.6",
        parent="v5.4",
        summary="host page-table walk for the level; no refcount shift (local adjusted "
        "pfn, original released); DAX mapped huge; zap_collapsible zaps zone_device too",
        cite="<20200108202448.9669-8-sean.j.christopherson@intel.com>",
        overrides={
            "tdp_page_fault": tdp_page_fault,
            "kvm_mmu_zap_collapsible_spte": kvm_mmu_zap_collapsible_spte,
        },
        mm_version="5.4",
    )
)
