"""arch/x86/kvm/mmu.c v5.4.33: the TDP page fault (``tdp_page_fault``) and its helpers.

Skeleton (kernel-semantics.md §1.4): choose the level from the VMA page size (gfn aligned
down for huge), read ``mmu_notifier_seq``, look the pfn up (one reference), take mmu_lock,
``mmu_notifier_retry`` → RET_PF_RETRY, THP adjust (reference shifted tail → head), install,
unlock, ``kvm_release_pfn_clean`` on the (possibly shifted) pfn.

Not modelled: ``fast_page_fault``, async page faults, prefetch (``direct_pte_prefetch``),
the NX-hugepage split, MMIO SPTEs. The memslots are read once per fault and the slot is
passed down (the kernel looks it up in ``mapping_level`` and again in ``try_async_pf``).
"""

from __future__ import annotations

from pfnlab import mm
from pfnlab.kernel.deprecation import owner_parameter_removed
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kvm import ghost
from pfnlab.kvm.hva import __gfn_to_pfn_memslot, current_mm, gfn_to_memslot
from pfnlab.kvm.kvm import PT_DIRECTORY_LEVEL, PT_PAGE_TABLE_LEVEL, Kvm, Memslot, Vcpu
from pfnlab.kvm.notifier import mmu_notifier_retry
from pfnlab.kvm.pfn import (
    is_error_noslot_pfn,
    is_error_pfn,
    kvm_get_pfn,
    kvm_is_reserved_pfn,
    kvm_is_zone_device_pfn,
    kvm_release_pfn_clean,
)
from pfnlab.kvm.spte import drop_spte, mmu_set_spte

RET_PF_RETRY = 0
RET_PF_EMULATE = 1
RET_PF_INVALID = 2
RET_PF_FIXED = 3
RET_PF_ERROR = -14  # -EFAULT from kvm_handle_bad_page

def fault_owner(vcpu: Vcpu) -> str:
    """The operation a vCPU's page fault runs in (the ledger owner of its references):
    ``vcpu0:fault``."""
    return f"{vcpu.name}:fault"


@kfunc
def kvm_host_page_size(vcpu: Vcpu, slot: Memslot, gfn: int) -> int:
    """virt/kvm/kvm_main.c v5.4: vma_kernel_pagesize of the VMA at the gfn's hva (in pages).

    Returns that size, or 1 (PAGE_SIZE) when no VMA maps the gfn's hva."""
    vma = mm.find_vma(current_mm(), slot.gfn_to_hva(gfn))
    if vma is None:
        return 1
    return int(mm.vma_kernel_pagesize(vma))


@kfunc
def host_mapping_level(vcpu: Vcpu, slot: Memslot, gfn: int) -> int:
    """arch/x86/kvm/mmu.c v5.4: the largest level whose size the VMA page size covers."""
    size = kvm_host_page_size(vcpu, slot, gfn)
    return PT_DIRECTORY_LEVEL if size >= vcpu.kvm.hpage_pages > 1 else PT_PAGE_TABLE_LEVEL


@kfunc
def mapping_level(vcpu: Vcpu, slot: Memslot | None, gfn: int) -> tuple[int, bool]:
    """arch/x86/kvm/mmu.c v5.4: host level capped by lpage_info; 4K forced when dirty logging.

    Returns ``(level, force_pt_level)``.
    """
    if slot is None or slot.dirty_logging:  # !memslot_valid_for_gpte(slot, true)
        return (PT_PAGE_TABLE_LEVEL, True)
    host_level = host_mapping_level(vcpu, slot, gfn)
    if host_level == PT_PAGE_TABLE_LEVEL:
        return (host_level, False)
    if slot.lpage_disallowed(gfn, vcpu.kvm.hpage_pages):
        return (PT_PAGE_TABLE_LEVEL, False)
    return (PT_DIRECTORY_LEVEL, False)


@kfunc
def mmu_gfn_lpage_is_disallowed(vcpu: Vcpu, slot: Memslot, gfn: int, level: int) -> bool:
    """arch/x86/kvm/mmu.c v5.4: lpage_info[level][gfn].disallow_lpage."""
    return slot.lpage_disallowed(gfn, vcpu.kvm.hpage_pages)


@kfunc
@owner_parameter_removed
def transparent_hugepage_adjust(
    vcpu: Vcpu, slot: Memslot, gfn: int, pfn: int, level: int
) -> tuple[int, int]:
    """arch/x86/kvm/mmu.c v5.4: map a THP tail huge; shift the reference to the head.

    Returns ``(pfn, level)``.
    """
    kvm = vcpu.kvm
    if (
        not is_error_noslot_pfn(pfn)
        and not kvm_is_reserved_pfn(pfn)
        and not kvm_is_zone_device_pfn(pfn)
        and level == PT_PAGE_TABLE_LEVEL
        and mm.PageTransCompoundMap(mm.pfn_to_page(pfn))
        and not mmu_gfn_lpage_is_disallowed(vcpu, slot, gfn, PT_DIRECTORY_LEVEL)
    ):
        # mmu_notifier_retry was successful and we hold the mmu_lock here, so the pmd
        # can't become splitting from under us, and in turn __split_huge_page_refcount()
        # can't run from under us and we can safely transfer the refcount from PG_tail to
        # PG_head as we switch the pfn to tail to head.
        level = PT_DIRECTORY_LEVEL
        mask = kvm.pages_per_hpage(level) - 1
        if (gfn & mask) != (pfn & mask):
            ghost.vm_bug_on("transparent_hugepage_adjust", pfn, "gfn/pfn misaligned")
        if pfn & mask:
            kvm_release_pfn_clean(pfn)
            pfn &= ~mask
            record_thp_shift(pfn)
            kvm_get_pfn(pfn)
    return (pfn, level)


def record_thp_shift(head: int) -> None:
    """Ledger (I7): the reference is being moved to ``head``; is it a THP head?"""
    why = ghost.page_is_thp_head(head)
    if why:
        ghost.event(ghost.EV_THP_SHIFT_NON_THP, head, why)


def record_huge_spte(kvm: Kvm, slot: Memslot, gfn: int, level: int, pfn: int) -> None:
    """Ledger (I7): a huge SPTE for ``gfn`` -> ``pfn`` is being installed; does the host map
    this hva huge?"""
    if level <= PT_PAGE_TABLE_LEVEL:
        return
    hva = slot.gfn_to_hva(gfn)
    host = ghost.host_level_truth(kvm, hva)
    if host is not None and host < kvm.hpage_pages:
        ghost.event(ghost.EV_HUGE_SPTE_HOST_SMALL, pfn,
                    f"gfn {gfn:#x} mapped huge, but the host maps hva {hva:#x} with {host} "
                    "page(s)")


@kfunc
def __direct_map(
    vcpu: Vcpu, slot: Memslot, gfn: int, write: bool, map_writable: bool, level: int, pfn: int,
) -> int:
    """arch/x86/kvm/mmu.c v5.4: walk to ``level`` (dropping a huge SPTE above a 4K target).

    Returns RET_PF_FIXED (the model has no walk that fails)."""
    kvm = vcpu.kvm
    if level == PT_PAGE_TABLE_LEVEL and kvm.hpage_pages > 1:
        large = kvm.spte_of(PT_DIRECTORY_LEVEL, gfn)
        if large is not None and large.spte is not None:
            drop_spte(kvm, large)  # drop_large_spte
    sptep = kvm.spte_of(level, gfn)
    assert sptep is not None, f"no SPTE object for gfn {gfn:#x} level {level}"
    base = gfn & ~(kvm.pages_per_hpage(level) - 1)
    record_huge_spte(kvm, slot, base, level, pfn)
    mmu_set_spte(kvm, sptep, write, pfn, False, map_writable)
    return RET_PF_FIXED


@kfunc
@owner_parameter_removed
def try_async_pf(
    vcpu: Vcpu, slot: Memslot | None, gfn: int, write: bool
) -> tuple[int, bool]:
    """arch/x86/kvm/mmu.c v5.4: __gfn_to_pfn_memslot (async page faults not modelled).

    Returns ``(pfn, map_writable)`` as :func:`__gfn_to_pfn_memslot` does."""
    return __gfn_to_pfn_memslot(slot, gfn, False, write, True)


@kfunc
@owner_parameter_removed
def tdp_page_fault(vcpu: Vcpu, gfn: int, write: bool) -> int:
    """arch/x86/kvm/mmu.c v5.4: the EPT/NPT fault (see the module docstring); returns a
    RET_PF_* value, RET_PF_ERROR being -EFAULT from kvm_handle_bad_page."""
    kvm = vcpu.kvm
    slot = gfn_to_memslot(kvm.memslots, gfn)
    level, force_pt_level = mapping_level(vcpu, slot, gfn)
    if not force_pt_level:
        gfn &= ~(kvm.pages_per_hpage(level) - 1)

    mmu_seq = kvm.mmu_notifier_seq
    pfn, map_writable = try_async_pf(vcpu, slot, gfn, write)
    if is_error_pfn(pfn):  # handle_abnormal_pfn → kvm_handle_bad_page
        return RET_PF_ERROR
    if slot is None:  # noslot: MMIO, emulated
        return RET_PF_EMULATE

    r = RET_PF_RETRY
    kvm.mmu_lock.acquire()
    if not mmu_notifier_retry(kvm, mmu_seq):
        if not force_pt_level:
            pfn, level = transparent_hugepage_adjust(vcpu, slot, gfn, pfn, level)
        r = __direct_map(vcpu, slot, gfn, write, map_writable, level, pfn)
    kvm.mmu_lock.release()
    kvm_release_pfn_clean(pfn)
    return r
