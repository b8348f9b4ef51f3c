"""KSM (mm/ksm.c v5.4): ksmd merges an anonymous page into an identical KSM page.

``try_to_merge_one_page``: ksmd holds the page (``follow_page``, ledger owner ``ksm``),
``write_protect_page`` clears the PTE under the MMU notifiers and refuses while anyone but
the mapping and ksmd holds a reference (``page_mapcount + 1 != page_count``: a gup pin,
KVM's fault between gup and its release, makes ksmd skip the page), else puts the PTE back
read-only; the contents are compared; ``replace_page`` then maps the KSM page read-only
under the notifiers and the old page loses the mapping's reference (freed). A later write
copies the KSM page (``do_wp_page``, pfnlab.mm.cow).

KSM pages come from ``Host.add_ksm(n)`` (set-up): refcount 1 (owner ``ksm``), PageKsm.
The model does not make new ones at run time. The new PTEs are set by
``set_pte_at_notify`` (``->change_pte`` first): in v5.4 KVM has zapped its SPTEs in
``invalidate_range_start`` by then, so KVM's ``change_pte`` finds nothing to change.
"""

from __future__ import annotations

from pfnlab.kernel.kfunc import kfunc
from pfnlab.mm.migrate import EAGAIN, EFAULT, EINVAL, anon_page_at
from pfnlab.mm.notifier import (
    mmu_notifier_invalidate_range_end,
    mmu_notifier_invalidate_range_start,
    set_pte_at_notify,
)
from pfnlab.mm.owners import KSM, MAPPING
from pfnlab.mm.page import Page, get_page, get_page_unless_zero, page_count, put_page
from pfnlab.mm.vma import Mm, PteVal, Vma


@kfunc
def write_protect_page(vma: Vma, hva: int, page: Page) -> PteVal | None:
    """mm/ksm.c v5.4: under the notifiers and the page-table lock, clear the PTE
    (ptep_clear_flush, so that no fast gup can pin the page meanwhile), check that only the
    mapping and ksmd hold the page, and put the PTE back write-protected.

    Returns the read-only PTE, or None (-EFAULT: ``hva`` no longer maps ``page``; the
    page is pinned: the PTE is restored as it was). A PTE already read-only is left as it
    is, unchecked, as the kernel does (the model has no dirty bit)."""
    mm = vma.mm
    mmu_notifier_invalidate_range_start(mm, hva, hva + 1)
    mm.ptl.acquire()
    ptep = mm.ptes[hva]
    orig = ptep.val
    out: PteVal | None = None
    if isinstance(orig, PteVal) and orig.pfn == page.pfn and not orig.special:
        if not orig.write:  # already read-only (and clean): nothing to do, no check
            out = orig
        else:
            ptep.val = None  # ptep_clear_flush
            if page_count(page) != 2:  # page_mapcount(page) + 1 (ksmd) != page_count(page)
                ptep.val = orig  # set_pte_at(..., entry): someone pins it
            else:
                out = orig._replace(write=False)
                set_pte_at_notify(mm, hva, out)  # the PTE write-protected
    mm.ptl.release()
    mmu_notifier_invalidate_range_end(mm, hva, hva + 1)
    return out


@kfunc
def replace_page(vma: Vma, hva: int, page: Page, kpage: Page, orig: PteVal) -> bool:
    """mm/ksm.c v5.4: under the notifiers, if the PTE is still ``orig``, map ``kpage``
    read-only (it takes the mapping's reference) and put the mapping's reference on
    ``page``. False (-EFAULT) if the PTE changed."""
    mm = vma.mm
    mmu_notifier_invalidate_range_start(mm, hva, hva + 1)
    mm.ptl.acquire()
    ptep = mm.ptes[hva]
    ok = ptep.val == orig
    if ok:
        get_page(kpage, MAPPING)  # page_add_anon_rmap
        ptep.val = None  # ptep_clear_flush
        set_pte_at_notify(mm, hva, PteVal(kpage.pfn, write=False))
        put_page(page, MAPPING)  # page_remove_rmap + put_page
    mm.ptl.release()
    mmu_notifier_invalidate_range_end(mm, hva, hva + 1)
    return ok


@kfunc
def try_to_merge_one_page(vma: Vma, hva: int, page: Page, kpage: Page) -> int:
    """mm/ksm.c v5.4: write-protect ``page``, compare it with ``kpage``, replace it.

    Returns 0 (merged), -EFAULT (pinned, changed, or the contents differ)."""
    orig = write_protect_page(vma, hva, page)
    if orig is None:
        return EFAULT
    if page.data != kpage.data:  # pages_identical (the PTE is read-only now)
        return EFAULT
    return 0 if replace_page(vma, hva, page, kpage, orig) else EFAULT


def ksm_merge_thread(mm: Mm, hva: int, kpage: Page) -> int:
    """Thread body: ksmd merges the anonymous 4K page mapped at ``hva`` into ``kpage``
    (``cmp_and_merge_page`` with a stable-tree match). Returns 0 (merged), -EAGAIN (the page
    is gone), -EINVAL (not an anonymous 4K page), -EFAULT (pinned, changed, different)."""
    found = anon_page_at(mm, hva)
    if isinstance(found, int):
        return found
    vma, page, _pte = found
    if page.ksm:  # already merged
        return EINVAL
    if not get_page_unless_zero(page, KSM):  # follow_page(FOLL_GET)
        return EAGAIN
    rc = try_to_merge_one_page(vma, hva, page, kpage)
    put_page(page, KSM)  # on success the old page is freed here
    return rc
