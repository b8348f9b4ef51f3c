"""Page migration: the host moves an anonymous page to another page under the notifiers.

What compaction, NUMA balancing, memory offlining and ``move_pages(2)`` do to a page that a
guest's memory is made of (mm/migrate.c, mm/rmap.c v5.4), for one anonymous 4K page mapped
at one hva:

1. ``isolate_lru_page``: the migration's own reference (ledger owner ``migrate``);
2. ``try_to_unmap_one`` (TTU_MIGRATION): ``invalidate_range_start`` (KVM zaps its SPTEs),
   the PTE becomes a migration entry under the page-table lock (with
   ``mmu_notifier_invalidate_range`` for secondary TLBs) and its mapping reference is
   dropped, ``invalidate_range_end``;
3. ``migrate_page_move_mapping``: an anonymous page moves only if the migration's
   reference is the last one (``page_count(page) == 1``); a page pinned by gup (a KVM
   fault between gup and its release, a ``kvm_vcpu_map``) cannot: ``-EAGAIN``;
4. on success the contents are copied (``data``, dirty and accessed) and the migration
   entry becomes a PTE to the new page; on ``-EAGAIN`` a PTE to the old page again;
5. both pages' temporary references are put: on success the old page goes back to the
   allocator (refcount 0), on failure the new one does.

A fault that meets the migration entry waits for it to go (``migration_entry_wait``, in
gup.py) and retries: it then finds the new page. New pages come from a pool of free pages
(:meth:`~pfnlab.mm.host.Host.add_free`) through :func:`alloc_page`.
"""

from __future__ import annotations

import errno

from pfnlab.kernel.kfunc import kfunc
from pfnlab.mm.alloc import ALLOC, alloc_page
from pfnlab.mm.host import PagePool
from pfnlab.mm.memmap import pfn_to_page
from pfnlab.mm.notifier import (
    MAPPING,
    mmu_notifier_invalidate_range,
    mmu_notifier_invalidate_range_end,
    mmu_notifier_invalidate_range_start,
)
from pfnlab.mm.owners import MIGRATE
from pfnlab.mm.page import Page, get_page, get_page_unless_zero, page_count, put_page
from pfnlab.mm.vma import MIGRATION, Mm, PteVal, Vma, find_extend_vma

EAGAIN = -errno.EAGAIN
ENOMEM = -errno.ENOMEM
EINVAL = -errno.EINVAL
EFAULT = -errno.EFAULT


@kfunc
def try_to_unmap_one(vma: Vma, hva: int, page: Page) -> bool:
    """mm/rmap.c v5.4 (TTU_MIGRATION): notifier start, the PTE to a migration entry under
    the page-table lock and the mapping's reference put, notifier end; False if ``hva``
    no longer maps ``page``."""
    mm = vma.mm
    mmu_notifier_invalidate_range_start(mm, hva, hva + 1)
    mm.ptl.acquire()
    ptep = mm.ptes[hva]
    v = ptep.val
    ok = isinstance(v, PteVal) and v.pfn == page.pfn and not v.special and not v.devmap
    if ok:
        ptep.val = MIGRATION
        # "Invalidate as we cleared the pte": secondary TLBs, under the page-table lock
        mmu_notifier_invalidate_range(mm, hva, hva + 1)
    mm.ptl.release()
    if ok:
        put_page(page, MAPPING)  # page_remove_rmap + put_page (the isolation ref remains)
    mmu_notifier_invalidate_range_end(mm, hva, hva + 1)
    return ok


@kfunc
def migrate_page_move_mapping(page: Page) -> int:
    """mm/migrate.c v5.4, an anonymous page (no ``page->mapping``): 0 if the caller's
    isolation reference is the only one left, else ``-EAGAIN`` (a pinned page stays)."""
    if page_count(page) != 1:
        return EAGAIN
    return 0


@kfunc
def migrate_page_copy(newpage: Page, page: Page) -> None:
    """mm/migrate.c v5.4: copy the contents, then the dirty and referenced bits."""
    newpage.data = page.data
    if page.dirty:
        newpage.dirty = True
    if page.accessed:
        newpage.accessed = True


@kfunc
def remove_migration_pte(vma: Vma, hva: int, new: Page, write: bool) -> None:
    """mm/migrate.c v5.4: the migration entry becomes a PTE to ``new`` (the old page when
    the move failed), which takes the mapping's reference."""
    mm = vma.mm
    get_page(new, MAPPING)
    mm.ptl.acquire()
    ptep = mm.ptes[hva]
    if ptep.val == MIGRATION:
        ptep.val = PteVal(new.pfn, write=write)
    mm.ptl.release()


@kfunc
def unmap_and_move(vma: Vma, hva: int, page: Page, newpage: Page, write: bool) -> int:
    """mm/migrate.c v5.4 unmap_and_move/__unmap_and_move for a page mapped once: unmap,
    move, remap; the isolation reference and the new page's are put at the end.

    Returns 0 (moved) or -EAGAIN (pinned by another reference, or no longer mapped)."""
    mapped = try_to_unmap_one(vma, hva, page)
    rc = migrate_page_move_mapping(page) if mapped else EAGAIN
    if rc == 0:
        migrate_page_copy(newpage, page)
        remove_migration_pte(vma, hva, newpage, write)
    elif mapped:
        remove_migration_pte(vma, hva, page, write)
    put_page(page, MIGRATE)     # putback: on success the old page is freed here
    put_page(newpage, ALLOC)    # on success the new PTE holds it; else back to the pool
    return rc


def anon_page_at(mm: Mm, hva: int) -> tuple[Vma, Page, PteVal] | int:
    """The VMA, the anonymous 4K page mapped at ``hva`` and the PTE read, as migration and
    KSM look it up (``find_vma`` + ``follow_page``), or the errno: -EFAULT (no VMA or page
    table there), -EINVAL (not present, not an anonymous 4K page: special, devmap, huge,
    file-backed)."""
    vma = find_extend_vma(mm, hva)
    ptep = mm.ptes.get(hva)
    if vma is None or ptep is None:
        return EFAULT
    v = ptep.val
    if not isinstance(v, PteVal) or v.special or v.devmap or v.huge:
        return EINVAL
    page = pfn_to_page(v.pfn)
    if not page.anon or page.kind is not None:
        return EINVAL
    return vma, page, v


@kfunc
def migrate_page_thread(mm: Mm, hva: int, pool: PagePool) -> int:
    """Thread body: migrate the anonymous 4K page mapped at ``hva`` to a page of ``pool``
    (compaction, NUMA balancing, ``move_pages(2)``): 0, or ``-EAGAIN`` (pinned, or gone),
    ``-ENOMEM`` (no free page), ``-EINVAL`` (not an anonymous 4K page), ``-EFAULT``."""
    found = anon_page_at(mm, hva)
    if isinstance(found, int):
        return found
    vma, page, v = found
    if not get_page_unless_zero(page, MIGRATE):  # isolate_lru_page
        return EAGAIN
    newpage = alloc_page(pool)
    if newpage is None:
        put_page(page, MIGRATE)
        return ENOMEM
    return unmap_and_move(vma, hva, page, newpage, v.write)
