"""Transparent huge page splitting: ``split_huge_pmd`` and ``split_huge_page``.

The model THP is an anonymous compound page of ``mm.pmd_pages`` pages mapped by one PMD.
While PMD-mapped its subpages have ``mapcount == -1`` and the head has
``compound_mapcount == 0``, so ``PageTransCompoundMap`` is true. ``split_huge_pmd`` maps it
with PTEs instead (mapcounts become 0, each PTE mapping holds a head reference), after which
``PageTransCompoundMap`` is false. ``split_huge_page`` then unmaps it (migration entries),
freezes the head's count (failing with -EBUSY if anybody, e.g. a gup pin, holds an extra
reference), turns the pages into order-0 pages and maps them back.

Reference bookkeeping is simplified to the kernel's end states: after a successful split
each page has refcount 1 (its PTE mapping) and the head also keeps the caller's reference.
"""

from __future__ import annotations

from pfnlab.explore import atomic
from pfnlab.kernel.kfunc import kfunc
from pfnlab.mm.memmap import pfn_to_page
from pfnlab.mm.notifier import (
    MAPPING,
    mmu_notifier_invalidate_range_end,
    mmu_notifier_invalidate_range_start,
)
from pfnlab.mm.page import (
    THP,
    Page,
    _ledger,
    compound_head,
    get_page_unless_zero,
    page_ref_dec_return,
    page_ref_freeze,
    put_page,
    set_page_count,
)
from pfnlab.mm.vma import INVALID, MIGRATION, TABLE, Mm, Pte, PteVal, find_extend_vma


@kfunc
def split_huge_pmd(mm: Mm, hva: int) -> None:
    """mm/huge_memory.c v5.4 __split_huge_pmd: notifier-bracketed PMD -> PTE table."""
    pmd_pages = mm.pmd_pages
    start = hva - hva % pmd_pages
    end = start + pmd_pages
    pmdp = mm.pmd(hva)
    if pmdp is None:
        return
    mmu_notifier_invalidate_range_start(mm, start, end)
    mm.ptl.acquire()
    pmd = pmdp.val
    if isinstance(pmd, PteVal):
        if pmd.devmap or pmd.special:
            pmdp.val = None  # dax: pmdp_huge_clear_flush_notify only
        else:
            __split_huge_pmd_locked(mm, pmdp, pmd, start)
    mm.ptl.release()
    mmu_notifier_invalidate_range_end(mm, start, end)


@kfunc
def __split_huge_pmd_locked(mm: Mm, pmdp: Pte, pmd: PteVal, start: int) -> None:
    """mm/huge_memory.c v5.4: invalidate the PMD, head refs += N-1, PTE-map every subpage."""
    n = mm.pmd_pages
    head = pfn_to_page(pmd.pfn)
    pmdp.val = INVALID  # pmdp_invalidate
    atomic(head, "refcount", lambda c: (c + n - 1, None))  # page_ref_add(page, N - 1)
    _ledger(head, n - 1, MAPPING)
    for i in range(n):
        sub = pfn_to_page(pmd.pfn + i)
        mm.ptes[start + i].val = PteVal(pmd.pfn + i, write=pmd.write)
        sub.mapcount = sub.mapcount + 1
    head.compound_mapcount = head.compound_mapcount - 1
    pmdp.val = TABLE  # pmd_populate


@kfunc
def split_huge_page(mm: Mm, page: Page) -> bool:
    """mm/huge_memory.c v5.4 split_huge_page_to_list (caller holds a ref): True on success."""
    head = compound_head(page)
    if head.kind != THP or head.thp_head is None:
        return False
    n = mm.pmd_pages
    start = mm.rmap[head.pfn]  # the one hva mapping the THP (anon_vma walk)
    end = start + n
    split_huge_pmd(mm, start)
    # unmap_page: try_to_unmap -> migration entries, each drops the mapping's reference
    mmu_notifier_invalidate_range_start(mm, start, end)
    mm.ptl.acquire()
    unmapped: list[int] = []  # the subpages mapped here (all, unless partly unmapped)
    for i in range(n):
        ptep = mm.ptes[start + i]
        if isinstance(ptep.val, PteVal):
            ptep.val = MIGRATION
            unmapped.append(i)
            sub = pfn_to_page(head.pfn + i)
            sub.mapcount = sub.mapcount - 1
            page_ref_dec_return(head, MAPPING, "try_to_unmap")
    mm.ptl.release()
    mmu_notifier_invalidate_range_end(mm, start, end)
    # the caller's reference is the only one left unless somebody pins the page
    ok = page_ref_freeze(head, 1)
    if ok:
        for i in range(n):
            sub = pfn_to_page(head.pfn + i)
            sub.thp_head = None
            if i and i in unmapped:
                set_page_count(sub, 1)  # the tail's PTE mapping (remap below)
                _ledger(sub, 1, MAPPING)
        # its PTE mapping (if it had one) + the caller's reference
        set_page_count(head, 2 if 0 in unmapped else 1)
        if 0 in unmapped:
            _ledger(head, 1, MAPPING)
    else:
        k = len(unmapped)
        atomic(head, "refcount", lambda c: (c + k, None))
        _ledger(head, k, MAPPING)
    # remap_page: remove_migration_ptes (the subpages that were mapped)
    mm.ptl.acquire()
    for i in unmapped:
        sub = pfn_to_page(head.pfn + i)
        mm.ptes[start + i].val = PteVal(head.pfn + i)
        sub.mapcount = sub.mapcount + 1
    mm.ptl.release()
    return ok


@kfunc
def thp_split_thread(mm: Mm, hva: int, pmd_only: bool = False) -> bool:
    """Thread body: split the THP mapped at ``hva`` (khugepaged/migration/compaction style)."""
    vma = find_extend_vma(mm, hva)
    if vma is None:
        return False
    if pmd_only:
        split_huge_pmd(mm, hva)
        return True
    pmdp = mm.pmd(hva)
    if pmdp is None:
        return False
    pmd = pmdp.val
    if pmd == TABLE:                          # already PTE-mapped (an earlier split_huge_pmd)
        pmd = mm.ptes[hva].val
    if not isinstance(pmd, PteVal):
        return False
    head = compound_head(pfn_to_page(pmd.pfn))
    if not get_page_unless_zero(head, "split"):
        return False
    ok = split_huge_page(mm, head)
    put_page(head, "split")
    return ok
