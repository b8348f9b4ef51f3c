"""arch/x86/kvm/mmu.c v5.4.33: zap 4K SPTEs of THPs when dirty logging is turned off.

``kvm_mmu_zap_collapsible_sptes`` runs with mmu_lock held, from
``kvm_mmu_slot_apply_flags`` once the new memslots (without KVM_MEM_LOG_DIRTY_PAGES) are
published. It holds **no** page reference: it classifies the pfn of an existing SPTE.
"""

from __future__ import annotations

from pfnlab import mm
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kvm.kvm import PT_PAGE_TABLE_LEVEL, Kvm, Memslot, Spte
from pfnlab.kvm.pfn import kvm_is_reserved_pfn, kvm_is_zone_device_pfn
from pfnlab.kvm.spte import drop_spte


@kfunc
def kvm_mmu_zap_collapsible_spte(kvm: Kvm, slot: Memslot, sptep: Spte) -> bool:
    """arch/x86/kvm/mmu.c v5.4: zap a direct 4K SPTE whose pfn is a PMD-mapped THP page."""
    val = sptep.spte
    if val is None:
        return False
    pfn = val.pfn
    # sp->role.direct is always true with TDP
    if (
        not kvm_is_reserved_pfn(pfn)
        and not kvm_is_zone_device_pfn(pfn)
        and mm.PageTransCompoundMap(mm.pfn_to_page(pfn))
    ):
        drop_spte(kvm, sptep)  # pte_list_remove
        return True
    return False


@kfunc
def kvm_mmu_zap_collapsible_sptes(kvm: Kvm, slot: Memslot) -> None:
    """arch/x86/kvm/mmu.c v5.4: slot_handle_leaf(kvm_mmu_zap_collapsible_spte) under mmu_lock."""
    kvm.mmu_lock.acquire()
    for sptep in kvm.slot_sptes(slot, PT_PAGE_TABLE_LEVEL):
        kvm_mmu_zap_collapsible_spte(kvm, slot, sptep)
    kvm.mmu_lock.release()
