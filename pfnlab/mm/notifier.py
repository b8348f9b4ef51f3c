"""MMU notifiers and the zap paths that fire them.

Subscribers are objects with ``invalidate_range_start(mm, start, end)``,
``invalidate_range_end(mm, start, end)`` and ``release(mm)`` (KVM's ``kvm->mmu_notifier``),
and optionally ``invalidate_range(mm, start, end)`` (the ``->invalidate_range`` of
secondary TLBs that share the CPU's page tables: an IOMMU, KVM's APIC-access page), called
by :func:`mmu_notifier_invalidate_range` and by ``invalidate_range_end`` before each
subscriber's ``invalidate_range_end``, and ``change_pte(mm, hva, val)``, called by
:func:`set_pte_at_notify` when a PTE is switched to another page (KSM, copy-on-write).
They are stored in the shared field ``Mm.notifiers``, so they must hash stably across
executions: make them :class:`~pfnlab.explore.Shared` objects. Ranges are ``[start, end)``
in hva page numbers.

Zapping follows the kernel's order: ``invalidate_range_start`` (KVM zaps its SPTEs), clear
the PTEs under the page-table lock, ``invalidate_range_end``, and only then
``tlb_finish_mmu`` puts the pages the cleared PTEs held a reference on. Devmap and special
PTEs hold no reference.
"""

from __future__ import annotations

from typing import Any

from pfnlab.kernel.kfunc import kfunc
from pfnlab.mm.memmap import pfn_to_page
from pfnlab.mm.owners import MAPPING
from pfnlab.mm.page import Page, compound_head, put_page
from pfnlab.mm.vma import (
    TABLE,
    AddressSpace,
    Mm,
    PteVal,
    Vma,
    entry_pfn,
)


@kfunc
def mmu_notifier_register(mm: Mm, subscriber: Any) -> None:
    """mm/mmu_notifier.c v5.4: add a subscription (mm_take_all_locks not modelled)."""
    mm.notifiers = (*mm.notifiers, subscriber)


@kfunc
def mmu_notifier_unregister(mm: Mm, subscriber: Any) -> None:
    """mm/mmu_notifier.c v5.4: ->release if still registered, remove it, synchronize_srcu.

    The caller frees the subscriber afterwards (kvm_destroy_vm), so it must wait for every
    notifier walk that may still call into it: ``synchronize_srcu(&srcu)``.
    """
    subs = mm.notifiers
    if subscriber in subs:
        subscriber.release(mm)
        mm.notifiers = tuple(s for s in mm.notifiers if s is not subscriber)
    mm.notifier_srcu.synchronize(f"{mm.name} mmu_notifier synchronize_srcu")


@kfunc
def mmu_notifier_invalidate_range_start(mm: Mm, start: int, end: int) -> None:
    """include/linux/mmu_notifier.h v5.4: under srcu, every subscriber's range_start."""
    mm.notifier_srcu.read_lock()
    for sub in mm.notifiers:
        sub.invalidate_range_start(mm, start, end)
    mm.notifier_srcu.read_unlock()


@kfunc
def mmu_notifier_invalidate_range_end(mm: Mm, start: int, end: int) -> None:
    """mm/mmu_notifier.c v5.4 __mmu_notifier_invalidate_range_end: under srcu, for each
    subscriber its ->invalidate_range (if it has one), then its ->invalidate_range_end."""
    _range_end(mm, start, end, True)


@kfunc
def mmu_notifier_invalidate_range_only_end(mm: Mm, start: int, end: int) -> None:
    """include/linux/mmu_notifier.h v5.4: ->invalidate_range_end without ->invalidate_range,
    for a caller that already called it with the page-table lock held
    (``ptep_clear_flush_notify``: wp_page_copy)."""
    _range_end(mm, start, end, False)


def _range_end(mm: Mm, start: int, end: int, invalidate_range: bool) -> None:
    mm.notifier_srcu.read_lock()
    for sub in mm.notifiers:
        rng = getattr(sub, "invalidate_range", None) if invalidate_range else None
        if rng is not None:
            rng(mm, start, end)
        sub.invalidate_range_end(mm, start, end)
    mm.notifier_srcu.read_unlock()


@kfunc
def mmu_notifier_invalidate_range(mm: Mm, start: int, end: int) -> None:
    """include/linux/mmu_notifier.h v5.4: under srcu, every subscriber's ->invalidate_range
    (what ``ptep_clear_flush_notify`` calls with the page-table lock held)."""
    mm.notifier_srcu.read_lock()
    for sub in mm.notifiers:
        rng = getattr(sub, "invalidate_range", None)
        if rng is not None:
            rng(mm, start, end)
    mm.notifier_srcu.read_unlock()


@kfunc
def mmu_notifier_change_pte(mm: Mm, hva: int, val: PteVal) -> None:
    """mm/mmu_notifier.c v5.4 __mmu_notifier_change_pte: under srcu, every subscriber's
    ->change_pte (if it has one) with the PTE about to be set at ``hva``."""
    mm.notifier_srcu.read_lock()
    for sub in mm.notifiers:
        change = getattr(sub, "change_pte", None)
        if change is not None:
            change(mm, hva, val)
    mm.notifier_srcu.read_unlock()


@kfunc
def set_pte_at_notify(mm: Mm, hva: int, val: PteVal) -> None:
    """include/linux/mmu_notifier.h v5.4: ->change_pte, then set the PTE at ``hva`` (the
    caller holds the page-table lock, inside an invalidate_range_start/end bracket)."""
    mmu_notifier_change_pte(mm, hva, val)
    mm.ptes[hva].val = val


@kfunc
def mmu_notifier_release(mm: Mm) -> None:
    """mm/mmu_notifier.c v5.4 __mmu_notifier_release: ->release for each, then unhash all."""
    subs = mm.notifiers
    for sub in subs:
        sub.release(mm)
    if subs:
        mm.notifiers = ()


@kfunc
def unmap_page_range(vma: Vma, start: int, end: int) -> list[Page]:
    """mm/memory.c v5.4: clear the PTEs/PMDs of [start, end) under the page-table lock.

    Returns the pages whose mapping reference the caller puts after the TLB flush. A huge
    PMD overlapping the range is zapped whole (partial-PMD zaps would split first).
    """
    mm = vma.mm
    pmd_pages = mm.pmd_pages
    freed: list[Page] = []
    mm.ptl.acquire()
    hva = start
    while hva < end:
        pmdp = mm.pmd(hva)
        if pmdp is not None:
            v = pmdp.val
            if v != TABLE:
                if isinstance(v, PteVal):
                    pmdp.val = None  # zap_huge_pmd
                    if not (v.devmap or v.special):
                        head = pfn_to_page(v.pfn)
                        if head.kind == "thp":
                            head.compound_mapcount = head.compound_mapcount - 1
                        freed.append(head)
                hva = (hva // pmd_pages + 1) * pmd_pages
                continue
        ptep = mm.ptes.get(hva)
        if ptep is not None:
            v = ptep.val
            if isinstance(v, PteVal):
                ptep.val = None
                if not (v.devmap or v.special):
                    page = pfn_to_page(entry_pfn(v, hva, pmd_pages))
                    if page.kind is not None:
                        page.mapcount = page.mapcount - 1  # page_remove_rmap
                    freed.append(page)
        hva += 1
    mm.ptl.release()
    return freed


@kfunc
def tlb_finish_mmu(pages: list[Page]) -> None:
    """mm/mmu_gather.c v5.4: after the TLB flush, free the batched pages (put_page each)."""
    for page in pages:
        put_page(compound_head(page), MAPPING)


@kfunc
def zap_page_range_single(vma: Vma, start: int, end: int) -> None:
    """mm/memory.c v5.4: notifier start, unmap_single_vma, notifier end, tlb_finish_mmu."""
    start, end = max(start, vma.start), min(end, vma.end)
    if start >= end:
        return
    mm = vma.mm
    mmu_notifier_invalidate_range_start(mm, start, end)
    pages = unmap_page_range(vma, start, end)
    mmu_notifier_invalidate_range_end(mm, start, end)
    tlb_finish_mmu(pages)


@kfunc
def zap_page_range(vma: Vma, start: int, end: int) -> None:
    """mm/memory.c v5.4 (MADV_DONTNEED): zap [start, end) of vma, notifier-bracketed."""
    zap_page_range_single(vma, start, end)


@kfunc
def unmap_mapping_range(
    mapping: AddressSpace, start: int = 0, nr: int = 0, even_cows: int = 0
) -> None:
    """mm/memory.c v5.4: zap file pages [start, start+nr) (nr 0: to EOF) in every mm."""
    mapping.i_mmap_rwsem.acquire()
    for vma in mapping.vmas:
        first = vma.start + max(0, start - vma.pgoff)
        last = vma.end if nr == 0 else min(vma.end, vma.start + start + nr - vma.pgoff)
        zap_page_range_single(vma, first, last)
    mapping.i_mmap_rwsem.release()
