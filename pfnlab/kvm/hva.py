"""virt/kvm/kvm_main.c v5.4.33: gfn → hva → pfn (gup, or follow_pfn for VM_IO|VM_PFNMAP).

C out-parameters become return values: ``hva_to_pfn`` and ``__gfn_to_pfn_memslot`` return
``(pfn, writable)``. ``writable`` as an argument means the caller passed a ``writable``
pointer (it accepts a writable mapping on a read fault). Not modelled: async page faults
(``*async`` is never set), HWPOISON, and ``fixup_user_fault`` dropping mmap_sem
(``-EAGAIN`` retry); the host mm model decides what mmap_sem means.
"""

from __future__ import annotations

from typing import Any

from pfnlab import mm
from pfnlab.explore import context
from pfnlab.kernel.deprecation import owner_parameter_removed
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kvm.kvm import Memslot
from pfnlab.kvm.pfn import (
    KVM_PFN_ERR_FAULT,
    KVM_PFN_ERR_RO_FAULT,
    KVM_PFN_NOSLOT,
    kvm_get_pfn,
    kvm_owner,
)

#: errno that ``hva_to_pfn_remapped`` returns negated for a pfn it cannot use (-EFAULT)
EFAULT = 14


def current_mm() -> Any:
    """``current->mm`` of the VMM process: the mm the VM was created in."""
    return context().kvm.mm


@kfunc
@owner_parameter_removed
def hva_to_pfn_fast(addr: int, write_fault: bool, writable: bool) -> int | None:
    """virt/kvm/kvm_main.c v5.4: lockless __get_user_pages_fast(write=1); one reference.

    Returns the pfn (the operation holds one reference on its page), or None: not a write or
    writable request, or the fast walk failed (the caller tries the slow path)."""
    if not (write_fault or writable):
        return None
    page = mm.__get_user_pages_fast(current_mm(), addr, True, owner=kvm_owner())
    if page is None:
        return None
    return int(mm.page_to_pfn(page))


@kfunc
@owner_parameter_removed
def hva_to_pfn_slow(
    addr: int, write_fault: bool, writable: bool
) -> tuple[int, int, bool]:
    """virt/kvm/kvm_main.c v5.4: get_user_pages_unlocked; map a read fault writable if possible.

    Returns ``(npages, pfn, writable)``.
    """
    mm_ = current_mm()
    page = mm.get_user_pages_unlocked(mm_, addr, write_fault, owner=kvm_owner())
    if page is None:
        return (0, KVM_PFN_ERR_FAULT, False)
    w = write_fault
    # map read fault as writable if possible
    if not write_fault and writable:
        wpage = mm.__get_user_pages_fast(mm_, addr, True, owner=kvm_owner())
        if wpage is not None:
            w = True
            mm.put_page(page, owner=kvm_owner())
            page = wpage
    return (1, int(mm.page_to_pfn(page)), w)


@kfunc
@owner_parameter_removed
def hva_to_pfn_remapped(
    vma: Any, addr: int, write_fault: bool, writable: bool
) -> tuple[int, int, bool]:
    """virt/kvm/kvm_main.c v5.4: follow_pfn (+ fixup_user_fault), then kvm_get_pfn unpinned.

    Returns ``(r, pfn, writable)``; ``r`` is 0 or ``-EFAULT``.
    """
    pfn = mm.follow_pfn(vma, addr)
    if pfn is None:
        mm.fixup_user_fault(current_mm(), addr, write_fault)
        pfn = mm.follow_pfn(vma, addr)
        if pfn is None:
            return (-EFAULT, KVM_PFN_ERR_FAULT, False)
    # Get a reference here because callers of *hva_to_pfn* and *gfn_to_pfn* will
    # eventually call kvm_release_pfn_clean on the returned pfn.
    kvm_get_pfn(pfn)
    return (0, pfn, True)


@kfunc
@owner_parameter_removed
def hva_to_pfn(
    addr: int, atomic: bool, write_fault: bool, writable: bool
) -> tuple[int, bool]:
    """virt/kvm/kvm_main.c v5.4: fast gup, slow gup, then VM_IO|VM_PFNMAP via follow_pfn.

    Returns ``(pfn, writable)``: on success the pfn, with one page reference held by
    the running operation when gup found a page (none for a remapped pfn without one); on failure
    ``(KVM_PFN_ERR_FAULT, False)`` and no reference."""
    pfn = hva_to_pfn_fast(addr, write_fault, writable)
    if pfn is not None:
        return (pfn, writable or write_fault)
    if atomic:
        return (KVM_PFN_ERR_FAULT, False)
    npages, pfn, w = hva_to_pfn_slow(addr, write_fault, writable)
    if npages == 1:
        return (pfn, w)
    vma = mm.find_vma_intersection(current_mm(), addr, addr + 1)
    if vma is None:
        return (KVM_PFN_ERR_FAULT, False)
    if vma.flags & (mm.VM_IO | mm.VM_PFNMAP):
        r, pfn, w = hva_to_pfn_remapped(vma, addr, write_fault, writable)
        if r < 0:
            return (KVM_PFN_ERR_FAULT, False)
        return (pfn, w)
    return (KVM_PFN_ERR_FAULT, False)


@kfunc
@owner_parameter_removed
def __gfn_to_pfn_memslot(
    slot: Memslot | None, gfn: int, atomic: bool, write_fault: bool, writable: bool
) -> tuple[int, bool]:
    """virt/kvm/kvm_main.c v5.4: no slot → NOSLOT; RO slot write → RO_FAULT; else hva_to_pfn.

    Returns ``(pfn, writable)``: ``KVM_PFN_NOSLOT`` or ``KVM_PFN_ERR_RO_FAULT`` (test with
    ``is_error_noslot_pfn``) and no reference, else what :func:`hva_to_pfn` returns."""
    if slot is None or not slot.contains(gfn):
        return (KVM_PFN_NOSLOT, False)
    if slot.readonly and write_fault:
        return (KVM_PFN_ERR_RO_FAULT, False)
    if slot.readonly and writable:
        writable = False
    return hva_to_pfn(slot.gfn_to_hva(gfn), atomic, write_fault, writable)


def gfn_to_memslot(slots: tuple[Memslot, ...], gfn: int) -> Memslot | None:
    """``__gfn_to_memslot`` over an already-read memslots array."""
    for s in slots:
        if s.contains(gfn):
            return s
    return None
