"""Copy-on-write: a write fault on a present read-only PTE of a writable VMA (mm/memory.c
v5.4 ``do_wp_page``).

The zero page (a read fault on a none anonymous PTE maps it, ``do_anonymous_page``) and a
KSM page (``pfnlab.mm.ksm``) are copied: a new page of the VMA's pool (``Host.add_anon(...,
refault=N)``) gets the contents, and under the MMU notifiers the PTE switches to it,
writable, and the old page loses the mapping's reference. Any other anonymous page is
mapped only by this PTE in the model, and v5.4 reuses it (``wp_page_reuse``: the PTE just
becomes writable; v5.4 decides by the mapcount, not by who else holds a reference); a
page that is not anonymous in a private writable mapping is copied.
"""

from __future__ import annotations

from pfnlab.kernel.kfunc import kfunc
from pfnlab.mm.alloc import alloc_page
from pfnlab.mm.memmap import pfn_to_page
from pfnlab.mm.notifier import (
    mmu_notifier_invalidate_range,
    mmu_notifier_invalidate_range_only_end,
    mmu_notifier_invalidate_range_start,
    set_pte_at_notify,
)
from pfnlab.mm.owners import ALLOC, COW, MAPPING
from pfnlab.mm.page import Page, _ledger, get_page, put_page
from pfnlab.mm.vma import PteVal, Vma


@kfunc
def do_wp_page(vma: Vma, hva: int) -> bool:
    """mm/memory.c v5.4: the write fault on a read-only present PTE at ``hva``: reuse an
    anonymous page mapped only here, copy the zero page or a KSM page (wp_page_copy).

    Returns True (the fault is handled: retried, the PTE writable or another fault got
    there first), False (VM_FAULT_OOM: no free page in the VMA's pool)."""
    mm = vma.mm
    ptep = mm.ptes[hva]
    mm.ptl.acquire()
    orig = ptep.val
    if not isinstance(orig, PteVal) or orig.write:
        mm.ptl.release()  # another fault changed it: retry the access
        return True
    old: Page | None = None if orig.special else pfn_to_page(orig.pfn)  # vm_normal_page
    if old is not None and old.anon and not old.ksm:
        # reuse_swap_page: the only mapping of an anonymous page (the model maps each
        # anonymous order-0 page once); a KSM page with others is copied (page_count != 1)
        ptep.val = orig._replace(write=True)  # wp_page_reuse
        mm.ptl.release()
        return True
    if old is not None:
        get_page(old, COW)  # vmf->page: held while copying
    mm.ptl.release()
    ok = wp_page_copy(vma, hva, orig, old)
    if old is not None:
        put_page(old, COW)
    return ok


@kfunc
def wp_page_copy(vma: Vma, hva: int, orig: PteVal, old: Page | None) -> bool:
    """mm/memory.c v5.4: a new page with ``old``'s contents (zeroed for the zero page);
    under the notifiers the PTE, if still ``orig``, maps it writable and the old page loses
    the mapping's reference. False (VM_FAULT_OOM) if the pool has no free page."""
    mm = vma.mm
    new = alloc_page(vma.anon_pool) if vma.anon_pool is not None else None
    if new is None:
        return False
    new.data = 0 if old is None else old.data  # cow_user_page / clear_user_highpage
    mmu_notifier_invalidate_range_start(mm, hva, hva + 1)
    mm.ptl.acquire()
    ptep = mm.ptes[hva]
    replaced = ptep.val == orig
    if replaced:
        ptep.val = None  # ptep_clear_flush_notify: secondary TLBs under the lock
        mmu_notifier_invalidate_range(mm, hva, hva + 1)
        set_pte_at_notify(mm, hva, PteVal(new.pfn, write=True))
        _ledger(new, -1, ALLOC)  # page_add_new_anon_rmap: the mapping's reference now
        _ledger(new, 1, MAPPING)
    if not replaced:
        put_page(new, ALLOC)  # another fault won: the new page goes back
    elif old is not None:
        put_page(old, MAPPING)  # page_remove_rmap; the old mapping's reference
    mm.ptl.release()
    # ->invalidate_range ran under the lock (ptep_clear_flush_notify): only the end now
    mmu_notifier_invalidate_range_only_end(mm, hva, hva + 1)
    return True
