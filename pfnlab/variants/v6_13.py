"""v6.13: KVM knows which page it refcounted; SPTE zaps do not touch ``struct page``.

Sean Christopherson, "KVM: Stop grabbing references to PFNMAP'd pages" (v13, Oct 2024;
8dd861cc07e2 "KVM: x86/mmu: Put refcounted pages instead of blindly releasing pfns"):

- ``kvm_follow_pfn`` returns the pfn **and** ``refcounted_page`` (the page gup returned, or
  NULL for PFNMAP memory, which is never refcounted: ``hva_to_pfn_remapped`` takes no
  reference at all);
- the fault releases exactly that page, under mmu_lock (``kvm_release_faultin_page``:
  unused → plain put; installed and writable → dirty + accessed; else accessed);
- ``mmu_spte_clear_track_bits`` only updates stats: no pfn → page, no A/D, no WARN;
- ``kvm_vcpu_map`` pins the page (FOLL_PIN, modelled as a gup reference) and refuses
  remapped pfns unless ``allow_unsafe_mappings``; unmap marks it dirty and unpins it.
"""

from __future__ import annotations

from typing import Any

from pfnlab import Variant, mm, register_variant
from pfnlab.explore import atomic
from pfnlab.kvm.fault import (
    RET_PF_EMULATE,
    RET_PF_ERROR,
    RET_PF_RETRY,
    __direct_map,
)
from pfnlab.kvm.follow_pfn import kvm_follow_pfn, kvm_release_faultin_page, kvm_set_page_dirty
from pfnlab.kvm.hugepage import kvm_mmu_hugepage_adjust, max_mapping_level
from pfnlab.kvm.hva import (
    EFAULT,
    current_mm,
    gfn_to_memslot,
)
from pfnlab.kvm.kvm import Kvm, Spte, SpteVal, Vcpu
from pfnlab.kvm.notifier import mmu_notifier_retry
from pfnlab.kvm.pfn import (
    KVM_PFN_ERR_FAULT,
    KVM_PFN_ERR_RO_FAULT,
    is_error_noslot_pfn,
    is_error_pfn,
    kvm_owner,
)
from pfnlab.kvm.vcpu_map import HostMap, map_pfn, unmap_pfn


def hva_to_pfn_remapped_613(
    vma: Any, addr: int, write_fault: bool, writable: bool
) -> tuple[int, int, bool]:
    """virt/kvm/kvm_main.c v6.13: follow_pfnmap_start; RO_FAULT for a write fault on a
    read-only PTE, ``writable`` from the PTE (bd2fae8da794); no reference taken."""
    pte = mm.follow_pte(vma.mm, addr)  # hva_to_pfn calls this only for VM_IO|VM_PFNMAP
    if pte is None:
        mm.fixup_user_fault(current_mm(), addr, write_fault)
        pte = mm.follow_pte(vma.mm, addr)
        if pte is None:
            return (-EFAULT, KVM_PFN_ERR_FAULT, False)
    if write_fault and not pte.write:
        return (0, KVM_PFN_ERR_RO_FAULT, False)
    return (0, pte.pfn, pte.write)


def tdp_page_fault(vcpu: Vcpu, gfn: int, write: bool) -> int:
    """arch/x86/kvm/mmu/mmu.c v6.13 direct_page_fault: release refcounted_page under mmu_lock."""
    kvm = vcpu.kvm
    slot = gfn_to_memslot(kvm.memslots, gfn)
    max_level = max_mapping_level(vcpu, slot, gfn)
    mmu_seq = kvm.mmu_notifier_seq
    pfn, map_writable, page = kvm_follow_pfn(slot, gfn, write, True, False)
    if is_error_pfn(pfn):
        return RET_PF_ERROR
    if slot is None:
        return RET_PF_EMULATE
    r = RET_PF_RETRY
    kvm.mmu_lock.acquire()
    if not mmu_notifier_retry(kvm, mmu_seq):
        level, pfn = kvm_mmu_hugepage_adjust(vcpu, slot, gfn, max_level, pfn)
        r = __direct_map(vcpu, slot, gfn, write, map_writable, level, pfn)
    kvm_release_faultin_page(kvm, page, r == RET_PF_RETRY, map_writable)
    kvm.mmu_lock.release()
    return r


def mmu_spte_clear_track_bits(kvm: Kvm, sptep: Spte) -> bool:
    """arch/x86/kvm/mmu/mmu.c v6.13: clear the SPTE, update stats; no struct page access."""
    old: SpteVal | None = atomic(sptep, "spte", lambda v: (None, v))
    return old is not None


def kvm_vcpu_map(vcpu: Vcpu, gfn: int) -> HostMap | None:
    """virt/kvm/kvm_main.c v6.13 __kvm_vcpu_map: kvm_follow_pfn(pin), kmap or memremap."""
    slot = gfn_to_memslot(vcpu.kvm.memslots, gfn)
    pfn, _, pinned = kvm_follow_pfn(slot, gfn, True, False, True)
    if is_error_noslot_pfn(pfn):
        return None
    hva = map_pfn(pfn, gfn)
    return HostMap(gfn, pfn, hva.page, hva.owner, pinned, hva)


def kvm_vcpu_unmap(vcpu: Vcpu, hmap: HostMap, dirty: bool) -> None:
    """virt/kvm/kvm_main.c v6.13: kunmap/memunmap; dirty + unpin_user_page(pinned_page)."""
    unmap_pfn(hmap)
    page = hmap.pinned_page
    if page is not None:
        if dirty:
            kvm_set_page_dirty(page)
        mm.unpin_user_page(page, owner=kvm_owner())


VARIANT = register_variant(
    Variant(
        name="v6.13",
        parent="v6.0",
        summary="kvm_follow_pfn reports refcounted_page; faults put exactly it; SPTE zaps "
        "never touch struct page; PFNMAP never refcounted; kvm_vcpu_map pins",
        cite="8dd861cc07e2; \"KVM: Stop grabbing references to PFNMAP'd pages\" v13",
        overrides={
            "hva_to_pfn_remapped": hva_to_pfn_remapped_613,
            "tdp_page_fault": tdp_page_fault,
            "mmu_spte_clear_track_bits": mmu_spte_clear_track_bits,
            "kvm_vcpu_map": kvm_vcpu_map,
            "kvm_vcpu_unmap": kvm_vcpu_unmap,
        },
        mm_version="5.18",
    )
)
