"""include/linux/mm_types.h v5.4: ``struct page``, the fields KVM and the mm model read.

The get/put family that changes them is in :mod:`pfnlab.mm.page`; the memmap that holds one
per pfn in :mod:`pfnlab.mm.memmap`.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore import Field, Ghost, Shared, Stable, context
from pfnlab.kernel.ordering import FREED, orders

ZONE_NORMAL = "NORMAL"
ZONE_DEVICE = "DEVICE"

THP = "thp"
HUGETLB = "hugetlb"
OTHER = "other"


class Page(Shared):
    """One ``struct page``. Shared fields are the parts that threads read or change."""

    refcount: Field[int] = Field(0)  # page->_refcount
    # set when the memmap is initialised, never written after; freed with the memmap only
    # once no reference pins the page (what makes KVM's unlocked reads of them safe):
    # Stable while pinned, checked by the engine (docs/reductions.md section 11)
    reserved: Stable[bool] = Stable(False, pinned=lambda p, who: page_pinned(p, who))
    zone: Stable[str] = Stable(ZONE_NORMAL, pinned=lambda p, who: page_pinned(p, who))
    dirty: Field[bool] = Field(False)  # PG_dirty
    accessed: Field[bool] = Field(False)  # PG_referenced/PG_active (mark_page_accessed)
    pgmap: Stable[Any] = Stable(None, pinned=lambda p, who: page_pinned(p, who))
    mapcount: Field[int] = Field(-1)  # page->_mapcount (compound pages only)
    compound_mapcount: Field[int] = Field(-1)  # compound_mapcount_ptr(head) (heads only)
    thp_head: Field[int | None] = Field(None)  # THP: head pfn while compound, None once split
    #: the page's memory (what a kernel mapping reads and writes): concurrent accesses to
    #: it are scheduling points; freeing the memmap frees it too
    data: Field[int] = Field(0)
    owners: Ghost[tuple[tuple[str, int], ...]] = Ghost(
        ()
    )  # ledger: sorted ((owner, references held), ...)

    def __init__(self, pfn: int) -> None:
        super().__init__(f"page@{pfn:#x}")
        self.pfn = pfn
        # compound page as allocated (immutable; set during set-up only)
        self.kind: str | None = None
        self.head_pfn = pfn
        self.order = 0
        self.anon = False  # PageAnon (page->mapping & PAGE_MAPPING_ANON)
        self.ksm = False  # PageKsm: a KSM page (pfnlab.mm.ksm), write-protected wherever mapped

    def set_compound(self, kind: str, head_pfn: int, order: int) -> None:
        """Set-up only: make this page part of a compound page of ``order``."""
        self.kind = kind
        self.head_pfn = head_pfn
        self.order = order
        if kind == THP:
            self.thp_head = head_pfn

    def held_by(self, owner: str) -> int:
        """References ``owner`` holds per the ledger (no scheduling point)."""
        return dict(self.owners).get(owner, 0)


orders(Page, FREED,
       primitive="a reference held across the access",
       how="memunmap_pages() frees the memmap only after dev_pagemap_cleanup() waited for "
           "the pgmap's references, which a gup reference on a device page keeps up (5.4 to "
           "5.17); without one, only the mapping the pfn came from, zapped before "
           "memunmap_pages(), keeps it; pfn_to_online_page() pins nothing",
       where="mm/memremap.c, v5.4")



orders(Page, "refcount", lockless=True,
       applies=lambda page: Page.zone.unobserved(page) == ZONE_DEVICE,
       primitive="get_dev_pagemap() before the page reference, and its holder's put",
       how="gup takes a live pgmap reference (percpu_ref_tryget_live) before it takes the "
           "page's and fails once memunmap_pages() has killed the pgmap; a page reference "
           "taken before that, memunmap_pages() waits for (5.4 to 5.17), so the teardown "
           "ends only when its holder puts it",
       where="mm/gup.c (gup_pte_range) and mm/memremap.c, v5.4")

def page_pinned(page: Page, who: str) -> bool:
    """Thread ``who`` holds a reference on the page's compound head (one the ledger
    attributes to it or to one of its owners ``who:...``): what keeps the memmap, and so
    the flags (PG_reserved), zone and pgmap, from going away under its reads (no steps;
    read by the engine for the Stable fields above). The thread that removes device memory
    (``Host.removed_by``) holds every device page."""
    h: Any = context().host
    if h.remover == who and h.sections[page.pfn].device:
        return True  # the thread that removes device memory (Host.removed_by)
    head = page if page.head_pfn == page.pfn else h.memmap[page.head_pfn]
    mine = who + ":"
    return any(n > 0 and (o == who or o.startswith(mine)) for o, n in head.owners)
