"""virt/kvm/kvm_main.c v6.13: ``kvm_follow_pfn`` knows which page it refcounted.

Sean Christopherson, "KVM: Stop grabbing references to PFNMAP'd pages" (v13, Oct 2024):
``kvm_follow_pfn`` returns the pfn **and** ``refcounted_page`` (the page gup returned, or
NULL for PFNMAP memory, which is never refcounted), and the fault releases exactly that
page (``kvm_release_faultin_page``, include/linux/kvm_host.h). The design ``v6.13``
(``pfnlab/variants/v6_13.py``) runs them; a model of a later kernel imports them from here.
"""

from __future__ import annotations

from typing import Any

from pfnlab import mm
from pfnlab.kernel.deprecation import owner_parameter_removed
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kernel.roles import releases_reference
from pfnlab.kvm.hva import current_mm, hva_to_pfn_fast, hva_to_pfn_remapped, hva_to_pfn_slow
from pfnlab.kvm.kvm import Kvm, Memslot
from pfnlab.kvm.pfn import KVM_PFN_ERR_FAULT, KVM_PFN_ERR_RO_FAULT, KVM_PFN_NOSLOT, kvm_owner

#: module parameter kvm.allow_unsafe_mappings (off by default)
ALLOW_UNSAFE_MAPPINGS = False


@kfunc
@owner_parameter_removed(at=4)
def kvm_follow_pfn(
    slot: Memslot | None, gfn: int, write_fault: bool, writable: bool, pin: bool
) -> tuple[int, bool, Any]:
    """virt/kvm/kvm_main.c v6.13: look the gfn's pfn up, knowing which page it refcounted.

    Returns ``(pfn, writable, refcounted_page)``: the page gup returned (one reference
    held by the running operation), or None for PFNMAP memory (never refcounted) and for
    an error pfn (``KVM_PFN_NOSLOT``, ``KVM_PFN_ERR_*``)."""
    if slot is None or not slot.contains(gfn):
        return (KVM_PFN_NOSLOT, False, None)
    if slot.readonly and write_fault:
        return (KVM_PFN_ERR_RO_FAULT, False, None)
    if slot.readonly:
        writable = False
    addr = slot.gfn_to_hva(gfn)
    pfn = hva_to_pfn_fast(addr, write_fault, writable)
    if pfn is not None:  # kvm_resolve_pfn(page): refcounted_page = the gup page
        return (pfn, writable or write_fault, mm.pfn_to_page(pfn))
    npages, pfn, w = hva_to_pfn_slow(addr, write_fault, writable)
    if npages == 1:
        return (pfn, w, mm.pfn_to_page(pfn))
    vma = mm.find_vma_intersection(current_mm(), addr, addr + 1)
    if vma is None or not vma.flags & (mm.VM_IO | mm.VM_PFNMAP):
        return (KVM_PFN_ERR_FAULT, False, None)
    if pin and not ALLOW_UNSAFE_MAPPINGS:
        return (KVM_PFN_ERR_FAULT, False, None)
    r, pfn, w = hva_to_pfn_remapped(vma, addr, write_fault, writable)
    if r < 0:
        return (KVM_PFN_ERR_FAULT, False, None)
    return (pfn, w, None)


def kvm_set_page_dirty(page: Any) -> None:
    """virt/kvm/kvm_main.c v6.13 (static there): SetPageDirty if kvm_is_ad_tracked_page."""
    if not mm.PageReserved(page):  # kvm_is_ad_tracked_page
        mm.SetPageDirty(page)


def kvm_set_page_accessed(page: Any) -> None:
    """virt/kvm/kvm_main.c v6.13 (static there): mark_page_accessed if kvm_is_ad_tracked_page."""
    if not mm.PageReserved(page):
        mm.mark_page_accessed(page)


@releases_reference
@kfunc
@owner_parameter_removed
def kvm_release_faultin_page(kvm: Kvm, page: Any, unused: bool, dirty: bool) -> None:
    """include/linux/kvm_host.h v6.13: put exactly the page the fault-in refcounted."""
    if page is None:
        return
    if not unused:
        if dirty:
            kvm_set_page_dirty(page)
        kvm_set_page_accessed(page)
    mm.put_page(page, owner=kvm_owner())
