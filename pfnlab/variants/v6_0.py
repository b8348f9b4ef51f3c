"""v6.0: ``kvm_pfn_to_refcounted_page``; A/D only on !PageReserved; kvm_try_get_pfn.

- b14b2690c50e "KVM: Rename/refactor kvm_is_reserved_pfn() to kvm_pfn_to_refcounted_page()":
  a page for valid non-PG_reserved pfns, the ZERO_PAGE, and ZONE_DEVICE; 284dc4930773 makes
  ``kvm_is_zone_device_page`` take a page (WARN_ON_ONCE on a zero count stays).
- a1040b0d42ac: A/D tracking is ``!PageReserved`` (``kvm_is_ad_tracked_pfn``); releases go
  through ``kvm_release_page_clean`` which marks the page accessed.
- f8be156be163 (v5.13): ``hva_to_pfn_remapped`` uses ``kvm_try_get_pfn`` =
  ``get_page_unless_zero`` (follow_pte and its PTE lock are not modelled: follow_pfn).
- The fault (5.16+, ``struct kvm_page_fault``) releases ``fault->pfn`` **after**
  ``kvm_mmu_hugepage_adjust`` aligned it; the level comes from the host page tables only
  (a8ac499bb6ab, "Don't require refcounted struct page to create huge SPTEs"; version
  UNVERIFIED). For non-compound huge mappings (fsdax PMDs) the put hits another page:
  reported by Nikolay Kuratov (<20241208083743.77295-1-kniv@yandex-team.ru>), fixed
  upstream by 8dd861cc07e2 in the v6.13 series.
- The retry check stays VM-wide here (the hva-ranged ``mmu_invalidate_retry_hva`` of
  later kernels is not modelled: it only allows more installs during unrelated
  invalidations).
"""

from __future__ import annotations

from typing import Any

from pfnlab import Variant, mm, register_variant
from pfnlab.explore import atomic
from pfnlab.kvm import ghost
from pfnlab.kvm.fault import (
    RET_PF_EMULATE,
    RET_PF_ERROR,
    RET_PF_RETRY,
    __direct_map,
    try_async_pf,
)
from pfnlab.kvm.hugepage import kvm_mmu_hugepage_adjust as hugepage_adjust
from pfnlab.kvm.hugepage import kvm_mmu_max_mapping_level, max_mapping_level
from pfnlab.kvm.hva import EFAULT, current_mm, gfn_to_memslot
from pfnlab.kvm.kvm import PT_PAGE_TABLE_LEVEL, Kvm, Memslot, Spte, SpteVal, Vcpu
from pfnlab.kvm.notifier import mmu_notifier_retry
from pfnlab.kvm.pfn import (
    KVM_PFN_ERR_FAULT,
    KVM_PFN_ERR_RO_FAULT,
    is_error_noslot_pfn,
    is_error_pfn,
    kvm_owner,
)
from pfnlab.kvm.refcounted import (
    kvm_is_ad_tracked_pfn,
    kvm_pfn_to_refcounted_page,
    kvm_release_page_clean,
    kvm_release_page_dirty,
    kvm_try_get_pfn,
)
from pfnlab.kvm.spte import drop_spte


def kvm_is_reserved_pfn(pfn: int) -> bool:
    """(v6.0: gone) any remaining caller: no refcounted page."""
    return kvm_pfn_to_refcounted_page(pfn) is None


def kvm_set_pfn_dirty(pfn: int) -> None:
    """virt/kvm/kvm_main.c v6.0: SetPageDirty if kvm_is_ad_tracked_pfn."""
    if kvm_is_ad_tracked_pfn(pfn):
        mm.SetPageDirty(mm.pfn_to_page(pfn))


def kvm_set_pfn_accessed(pfn: int) -> None:
    """virt/kvm/kvm_main.c v6.0: mark_page_accessed if kvm_is_ad_tracked_pfn."""
    if kvm_is_ad_tracked_pfn(pfn):
        mm.mark_page_accessed(mm.pfn_to_page(pfn))


def kvm_release_pfn_clean(pfn: int) -> None:
    """virt/kvm/kvm_main.c v6.0: release the refcounted page of the pfn, if any."""
    if is_error_noslot_pfn(pfn):
        return
    page = kvm_pfn_to_refcounted_page(pfn)
    if page is None:
        return
    kvm_release_page_clean(page)


def kvm_release_pfn_dirty(pfn: int) -> None:
    """virt/kvm/kvm_main.c v6.0: dirty release of the refcounted page of the pfn, if any."""
    if is_error_noslot_pfn(pfn):
        return
    page = kvm_pfn_to_refcounted_page(pfn)
    if page is None:
        return
    kvm_release_page_dirty(page)


def kvm_get_pfn(pfn: int) -> None:
    """virt/kvm/kvm_main.c v6.0: get_page on the refcounted page, if any."""
    page = kvm_pfn_to_refcounted_page(pfn)
    if page is not None:
        mm.get_page(page, owner=kvm_owner())


def hva_to_pfn_remapped(
    vma: Any, addr: int, write_fault: bool, writable: bool
) -> tuple[int, int, bool]:
    """virt/kvm/kvm_main.c v6.0: follow_pte; a write fault on a read-only PTE is RO_FAULT and
    ``writable`` is pte_write (bd2fae8da794, v5.12); then kvm_try_get_pfn (-EFAULT if 0)."""
    pte = mm.follow_pte(vma.mm, addr)  # hva_to_pfn calls this only for VM_IO|VM_PFNMAP
    if pte is None:
        mm.fixup_user_fault(current_mm(), addr, write_fault)
        pte = mm.follow_pte(vma.mm, addr)
        if pte is None:
            return (-EFAULT, KVM_PFN_ERR_FAULT, False)
    if write_fault and not pte.write:
        return (0, KVM_PFN_ERR_RO_FAULT, False)
    if not kvm_try_get_pfn(pte.pfn):
        return (-EFAULT, KVM_PFN_ERR_FAULT, False)
    return (0, pte.pfn, pte.write)


def mmu_spte_clear_track_bits(kvm: Kvm, sptep: Spte) -> bool:
    """arch/x86/kvm/mmu/mmu.c v6.0: WARN if the refcounted page has count 0; A/D by pfn."""
    from pfnlab.kvm.pfn import kvm_set_pfn_accessed as set_accessed
    from pfnlab.kvm.pfn import kvm_set_pfn_dirty as set_dirty

    old: SpteVal | None = atomic(sptep, "spte", lambda v: (None, v))
    if old is None:
        return False
    pfn = old.pfn
    page = kvm_pfn_to_refcounted_page(pfn)
    if page is not None and not mm.page_count(page):
        ghost.warn("mmu_spte_clear_track_bits", pfn, "zapping an SPTE of a page with count 0",
                   violates=ghost.NO_SPTE_TO_FREED)
    if old.accessed:
        set_accessed(pfn)
    if old.dirty:
        set_dirty(pfn)
    return True


def kvm_mmu_hugepage_adjust(
    vcpu: Vcpu, slot: Memslot, gfn: int, max_level: int, pfn: int
) -> tuple[int, int]:
    """arch/x86/kvm/mmu/mmu.c v6.0: level from the host walk; ``fault->pfn &= ~mask``."""
    if max_level == PT_PAGE_TABLE_LEVEL or is_error_noslot_pfn(pfn) or slot.dirty_logging:
        return (PT_PAGE_TABLE_LEVEL, pfn)
    level = kvm_mmu_max_mapping_level(vcpu.kvm, slot, gfn, max_level)
    if level == PT_PAGE_TABLE_LEVEL:
        return (level, pfn)
    mask = vcpu.kvm.pages_per_hpage(level) - 1
    return (level, pfn & ~mask)


def tdp_page_fault(vcpu: Vcpu, gfn: int, write: bool) -> int:
    """arch/x86/kvm/mmu/mmu.c v6.0 direct_page_fault: releases the *adjusted* fault->pfn."""
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
    if not mmu_notifier_retry(kvm, mmu_seq):  # is_page_fault_stale
        level, pfn = hugepage_adjust(vcpu, slot, gfn, max_level, pfn)
        r = __direct_map(vcpu, slot, gfn, write, map_writable, level, pfn)
    kvm.mmu_lock.release()
    from pfnlab.kvm.pfn import kvm_release_pfn_clean as release

    release(pfn)
    return r


def kvm_mmu_zap_collapsible_spte(kvm: Kvm, slot: Memslot, sptep: Spte) -> bool:
    """arch/x86/kvm/mmu/mmu.c v6.0: zap if the host could map the gfn at a higher level."""
    val = sptep.spte
    if val is None:
        return False
    if sptep.level < kvm_mmu_max_mapping_level(kvm, slot, sptep.gfn, 2):
        drop_spte(kvm, sptep)
        return True
    return False


VARIANT = register_variant(
    Variant(
        name="v6.0",
        parent="v5.6",
        summary="kvm_pfn_to_refcounted_page; A/D only on !PageReserved; kvm_try_get_pfn "
        "in hva_to_pfn_remapped; fault releases the hugepage-adjusted pfn",
        cite="b14b2690c50e, 284dc4930773, a1040b0d42ac, f8be156be163; "
        "<20241208083743.77295-1-kniv@yandex-team.ru>",
        overrides={
            "kvm_is_reserved_pfn": kvm_is_reserved_pfn,
            "kvm_set_pfn_dirty": kvm_set_pfn_dirty,
            "kvm_set_pfn_accessed": kvm_set_pfn_accessed,
            "kvm_release_pfn_clean": kvm_release_pfn_clean,
            "kvm_release_pfn_dirty": kvm_release_pfn_dirty,
            "kvm_get_pfn": kvm_get_pfn,
            "hva_to_pfn_remapped": hva_to_pfn_remapped,
            "mmu_spte_clear_track_bits": mmu_spte_clear_track_bits,
            "kvm_mmu_hugepage_adjust": kvm_mmu_hugepage_adjust,
            "tdp_page_fault": tdp_page_fault,
            "kvm_mmu_zap_collapsible_spte": kvm_mmu_zap_collapsible_spte,
        },
        mm_version="5.18",
    )
)
