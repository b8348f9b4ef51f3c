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
from pfnlab.kvm.fault import (
    RET_PF_EMULATE,
    RET_PF_ERROR,
    RET_PF_RETRY,
    __direct_map,
    try_async_pf,
)
from pfnlab.kvm.hugepage import kvm_mmu_hugepage_adjust, max_mapping_level
from pfnlab.kvm.hva import gfn_to_memslot
from pfnlab.kvm.kvm import Kvm, Memslot, Spte, Vcpu
from pfnlab.kvm.notifier import mmu_notifier_retry
from pfnlab.kvm.pfn import (
    is_error_pfn,
    kvm_is_reserved_pfn,
    kvm_is_zone_device_pfn,
    kvm_release_pfn_clean,
)
from pfnlab.kvm.spte import drop_spte


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
