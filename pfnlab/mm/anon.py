"""Anonymous faults: a zapped anonymous PTE faults in again (mm/memory.c v5.4).

After ``MADV_DONTNEED`` (``zap_page_range``) an anonymous VMA has none PTEs; the next
access faults them in through ``do_anonymous_page``: a read maps the shared zero page
(read-only, special), a write allocates a zeroed page and maps it writable. Only VMAs
built with ``Host.add_anon(refault=N)`` have this path (their ``anon_pool`` of N free
pages); elsewhere a none PTE still fails the fault. A write fault on the zero page then
copies it (``do_wp_page``, pfnlab.mm.cow).
"""

from __future__ import annotations

from pfnlab.kernel.kfunc import kfunc
from pfnlab.mm.alloc import ALLOC, alloc_page
from pfnlab.mm.memmap import host
from pfnlab.mm.notifier import MAPPING
from pfnlab.mm.page import _ledger, put_page
from pfnlab.mm.vma import PteVal, Vma


@kfunc
def do_anonymous_page(vma: Vma, hva: int, write: bool) -> bool:
    """mm/memory.c v5.4: a none PTE in an anonymous VMA. A read maps the zero page; a
    write a new zeroed page of the VMA's pool, whose reference becomes the mapping's;
    False (VM_FAULT_OOM) if no page is free. A PTE another fault filled first wins."""
    mm = vma.mm
    ptep = mm.ptes[hva]
    if not write:
        mm.ptl.acquire()
        if ptep.val is None:
            ptep.val = PteVal(host().zero_pfn, write=False, special=True)
        mm.ptl.release()
        return True
    page = alloc_page(vma.anon_pool)  # alloc_zeroed_user_highpage_movable
    if page is None:
        return False
    page.data = 0  # clear_user_highpage
    mm.ptl.acquire()
    if ptep.val is not None:  # !pte_none(*vmf->pte): another fault mapped it first
        mm.ptl.release()
        put_page(page, ALLOC)
        return True
    ptep.val = PteVal(page.pfn, write=True)  # page_add_new_anon_rmap + set_pte_at
    _ledger(page, -1, ALLOC)   # the allocation's reference is the mapping's now
    _ledger(page, 1, MAPPING)
    mm.ptl.release()
    return True
