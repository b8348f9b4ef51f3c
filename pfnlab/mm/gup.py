"""get_user_pages: the fast (lockless) and slow paths, follow_pfn and fixup_user_fault.

On success the caller holds exactly one page reference (on the compound head for compound
pages), never a pgmap reference: the pgmap reference taken for devmap entries is put
before returning. On failure no reference is held.

The slow path takes the page-table lock around reading an entry and taking the reference,
as ``follow_page_pte``/``follow_trans_huge_pmd`` do, so it never races a zap or a split.
Faults: ``handle_mm_fault`` calls the VMA's ``fault`` hook if it has one (device-dax);
waits for a migration entry to go and retries (migration_entry_wait); faults a zapped PTE
of an anonymous VMA built with ``refault`` in again (anon.py); otherwise PTEs are
pre-populated by the scenario and a missing or read-only entry fails (COW is not
modelled). The slow path retries a fault at most twice.
"""

from __future__ import annotations

from pfnlab.explore import wait_until
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kernel.roles import refcount_api, releases_reference
from pfnlab.mm.anon import do_anonymous_page
from pfnlab.mm.cow import do_wp_page
from pfnlab.mm.memmap import is_zero_pfn, pfn_to_page
from pfnlab.mm.memremap import DevPagemap, get_dev_pagemap, put_dev_pagemap
from pfnlab.mm.page import Page, get_page, put_page, try_get_compound_head, try_get_page
from pfnlab.mm.vma import (
    MIGRATION,
    TABLE,
    VM_IO,
    VM_MIXEDMAP,
    VM_PFNMAP,
    VM_WRITE,
    Mm,
    Pte,
    PteVal,
    Vma,
    entry_pfn,
    find_extend_vma,
)

_FAULT = "fault"  # follow_page_mask: no page, fault it in
_ERROR = "error"  # follow_page_mask: -EFAULT


# --------------------------------------------------------------------------- fast path
@refcount_api("gup")
@kfunc
def __get_user_pages_fast(mm: Mm, hva: int, write: bool, owner: str | None = None) -> Page | None:
    """mm/gup.c v5.4: lockless walk (irqs off); one page reference on success."""
    pmdp = mm.pmd(hva)
    if pmdp is not None:
        pmd = pmdp.val
        if not isinstance(pmd, PteVal):
            if pmd != TABLE:
                return None  # pmd_none, migration, invalidated
        else:
            return gup_huge_pmd(mm, pmdp, pmd, hva, write, owner)
    ptep = mm.ptes.get(hva)
    if ptep is None:
        return None
    return gup_pte_range(ptep, write, owner)


@kfunc
def gup_pte_range(ptep: Pte, write: bool, owner: str | None = None) -> Page | None:
    """mm/gup.c v5.4: devmap -> get_dev_pagemap; special -> fail; speculative ref; re-check.

    Returns the page with one reference, or NULL with none (the slow path takes over)."""
    pte = ptep.val
    if not isinstance(pte, PteVal) or (write and not pte.write):
        return None
    pgmap: DevPagemap | None = None
    if pte.devmap:
        pgmap = get_dev_pagemap(pte.pfn, None)
        if pgmap is None:
            return None  # undo_dev_pagemap
    elif pte.special:
        return None
    page = pfn_to_page(pte.pfn)
    head = try_get_compound_head(page, 1, owner)
    result: Page | None = page
    if head is None:
        result = None
    elif ptep.val != pte:
        put_page(head, owner)
        result = None
    if pgmap is not None:
        put_dev_pagemap(pgmap)
    return result


@kfunc
def gup_huge_pmd(
    mm: Mm, pmdp: Pte, orig: PteVal, hva: int, write: bool, owner: str | None = None
) -> Page | None:
    """mm/gup.c v5.4: THP/hugetlb PMD: ref on the head, re-check the PMD; devmap PMDs apart.

    Returns the subpage at ``hva`` with one reference held on its head, or NULL (no
    reference: a read-only PMD for a write, a zero refcount, the PMD changed)."""
    if write and not orig.write:
        return None
    if orig.devmap:
        return __gup_device_huge_pmd(mm, pmdp, orig, hva, owner)
    page = pfn_to_page(entry_pfn(orig, hva, mm.pmd_pages))
    head = try_get_compound_head(pfn_to_page(orig.pfn), 1, owner)
    if head is None:
        return None
    if pmdp.val != orig:
        put_page(head, owner)
        return None
    return page


@kfunc
def __gup_device_huge_pmd(
    mm: Mm, pmdp: Pte, orig: PteVal, hva: int, owner: str | None = None
) -> Page | None:
    """mm/gup.c v5.4 __gup_device_huge: get_dev_pagemap, get_page, put pgmap, re-check PMD.

    Returns the page at ``hva`` with one reference, or NULL (no reference, no pgmap
    reference: the device is going away, or the PMD changed)."""
    pfn = entry_pfn(orig, hva, mm.pmd_pages)
    pgmap = get_dev_pagemap(pfn, None)
    if pgmap is None:
        return None
    page = pfn_to_page(pfn)
    get_page(page, owner)
    put_dev_pagemap(pgmap)
    if pmdp.val != orig:
        put_page(page, owner)  # undo_dev_pagemap
        return None
    return page


# --------------------------------------------------------------------------- slow path
@refcount_api("gup")
@kfunc
def get_user_pages_unlocked(mm: Mm, hva: int, write: bool, owner: str | None = None) -> Page | None:
    """mm/gup.c v5.4: mmap_sem for read around __get_user_pages; one reference on success."""
    mm.mmap_sem.down_read()
    page = __get_user_pages(mm, hva, write, owner)
    mm.mmap_sem.up_read()
    return page


@refcount_api("gup")
@kfunc
def __get_user_pages(mm: Mm, hva: int, write: bool, owner: str | None = None) -> Page | None:
    """mm/gup.c v5.4: find_extend_vma, check_vma_flags, follow_page_mask, faultin_page.

    Returns the page with one reference held by ``owner``, or NULL (the kernel's
    -EFAULT: no VMA, VM_IO|VM_PFNMAP, or the fault failed)."""
    for _ in range(3):
        vma = find_extend_vma(mm, hva)
        if vma is None or vma.flags & (VM_IO | VM_PFNMAP):
            return None  # -EFAULT
        got = follow_page_mask(vma, hva, write, owner)
        if isinstance(got, Page):
            return got
        if got == _ERROR or not handle_mm_fault(vma, hva, write):
            return None
    return None


@kfunc
def follow_page_mask(vma: Vma, hva: int, write: bool, owner: str | None = None) -> Page | str:
    """mm/gup.c v5.4: walk under the page-table lock, take the reference (FOLL_GET).

    Returns the page with one reference, or ``"fault"`` (no page: fault it in and try
    again) or ``"error"`` (-EFAULT), with no reference."""
    mm = vma.mm
    pmdp = mm.pmd(hva)
    if pmdp is not None:
        while True:
            mm.ptl.acquire()
            pmd = pmdp.val
            if pmd != MIGRATION:
                break
            mm.ptl.release()  # pmd_migration_entry_wait
            wait_until(lambda: pmdp.val != MIGRATION, what=f"{pmdp.name} migration entry")
        if isinstance(pmd, PteVal):
            got = follow_huge_pmd(vma, pmd, hva, write, owner)
            mm.ptl.release()
            return got
        if pmd != TABLE:
            mm.ptl.release()
            return _FAULT
    else:
        mm.ptl.acquire()
    got = follow_page_pte(vma, mm.ptes.get(hva), write, owner)
    mm.ptl.release()
    return got


@kfunc
def follow_huge_pmd(
    vma: Vma, pmd: PteVal, hva: int, write: bool, owner: str | None = None
) -> Page | str:
    """mm/huge_memory.c v5.4 follow_trans_huge_pmd / follow_devmap_pmd; hugetlb alike.

    Returns the subpage with one reference on its head, or ``"fault"`` / ``"error"`` as
    :func:`follow_page_mask`."""
    if write and not pmd.write:
        return _FAULT
    pfn = entry_pfn(pmd, hva, vma.mm.pmd_pages)
    if pmd.devmap:
        pgmap = get_dev_pagemap(pfn, None)
        if pgmap is None:
            return _ERROR  # -EFAULT
        page = pfn_to_page(pfn)
        get_page(page, owner)
        put_dev_pagemap(pgmap)
        return page
    page = pfn_to_page(pfn)
    get_page(page, owner)  # the head's count (compound)
    return page


@kfunc
def follow_page_pte(
    vma: Vma, ptep: Pte | None, write: bool, owner: str | None = None
) -> Page | str:
    """mm/gup.c v5.4: vm_normal_page, devmap via get_dev_pagemap, zero page, try_get_page.

    Returns the page with one reference, or ``"fault"`` / ``"error"`` as
    :func:`follow_page_mask`."""
    pte = ptep.val if ptep is not None else None
    if not isinstance(pte, PteVal):
        return _FAULT
    if write and not pte.write:
        return _FAULT  # faultin_page: the write fault copies or reuses it (do_wp_page)
    page = vm_normal_page(vma, pte)
    pgmap: DevPagemap | None = None
    if page is None and pte.devmap:
        pgmap = get_dev_pagemap(pte.pfn, None)
        if pgmap is None:
            return _FAULT  # no_page: the dax fault sees the device dead
        page = pfn_to_page(pte.pfn)
    elif page is None:
        if not is_zero_pfn(pte.pfn):
            return _ERROR  # special PTE in a VM_MIXEDMAP vma
        page = pfn_to_page(pte.pfn)
    ok = try_get_page(page, owner)
    if pgmap is not None:
        put_dev_pagemap(pgmap)
    return page if ok else _ERROR


@kfunc
def vm_normal_page(vma: Vma, pte: PteVal) -> Page | None:
    """mm/memory.c v5.4 (ARCH_HAS_PTE_SPECIAL): the page behind a PTE, NULL if special."""
    if not pte.special:
        return pfn_to_page(pte.pfn)
    if vma.flags & (VM_PFNMAP | VM_MIXEDMAP):
        return None
    return None  # zero pfn, devmap


@kfunc
def handle_mm_fault(vma: Vma, hva: int, write: bool) -> bool:
    """mm/memory.c v5.4: the VMA's fault handler; a present, permitted entry is a no-op."""
    mm = vma.mm
    pmdp = mm.pmd(hva)
    val = pmdp.val if pmdp is not None else TABLE
    entry = pmdp
    if val == TABLE:
        entry = ptep = mm.ptes.get(hva)
        val = ptep.val if ptep is not None else None
    if val == MIGRATION and entry is not None:
        # do_swap_page / pmd_migration_entry_wait: wait for the migration, then retry
        wait_until(lambda: entry.val != MIGRATION, what=f"{entry.name} migration entry")
        return True
    if isinstance(val, PteVal) and (val.write or not write):
        return True
    if vma.anon_pool is not None and hva in mm.ptes:  # handle_pte_fault, anonymous VMA
        if val is None:
            return do_anonymous_page(vma, hva, write)  # pte_none
        if isinstance(val, PteVal) and not val.huge and vma.flags & VM_WRITE:
            return do_wp_page(vma, hva)  # a write on a read-only PTE: copy-on-write
    if vma.fault is None:
        return False
    return vma.fault(vma, hva, write)


@kfunc
def fixup_user_fault(mm: Mm, hva: int, write: bool) -> bool:
    """mm/gup.c v5.4: find_extend_vma and handle_mm_fault; True unless VM_FAULT_ERROR."""
    vma = find_extend_vma(mm, hva)
    if vma is None or (write and not vma.flags & VM_WRITE):
        return False
    return handle_mm_fault(vma, hva, write)


@kfunc
def follow_pfn(vma: Vma, hva: int) -> int | None:
    """mm/memory.c v5.4: pfn of a VM_IO|VM_PFNMAP PTE; -EINVAL otherwise (no ref taken)."""
    if not vma.flags & (VM_IO | VM_PFNMAP):
        return None
    pte = follow_pte(vma.mm, hva)
    return None if pte is None else pte.pfn


@kfunc
def follow_pte(mm: Mm, hva: int) -> PteVal | None:
    """mm/memory.c v5.12: the present PTE mapping ``hva`` (its pfn and pte_write), or None
    (-EINVAL: no PTE, or a huge or absent PMD). One read of the PTE: the kernel holds the
    page-table lock while the caller looks at it."""
    pmdp = mm.pmd(hva)
    if pmdp is not None and pmdp.val != TABLE:
        return None
    ptep = mm.ptes.get(hva)
    pte = ptep.val if ptep is not None else None
    return pte if isinstance(pte, PteVal) else None


@releases_reference
@kfunc
def unpin_user_page(page: Page, owner: str | None = None) -> None:
    """mm/gup.c v5.6+: drop a FOLL_PIN reference (the model keeps no GUP_PIN_COUNTING_BIAS:
    a pin is one reference, so this is put_page)."""
    put_page(page, owner)
