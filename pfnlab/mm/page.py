"""``struct page``: the refcount, the flags KVM looks at, and the get/put family.

Every reference count change goes through :func:`page_ref_inc`, :func:`page_ref_dec_return`
or :func:`page_ref_add_unless_zero` (one ``atomic()`` step each). They keep a ghost ledger
``Page.owners`` (owner -> references taken minus put) that checks can read. The owner is
the running thread's current operation (:func:`pfnlab.kernel.operation.current_owner`:
``vcpu0:fault`` inside a fault) unless the caller names one (the host's own holders:
``mapping``, ``pagecache``); an empty owner (outside every operation) is not recorded.

Compound pages: the kernel keeps one refcount per compound page, in the head; tail pages
keep ``_refcount == 0`` and every get/put of a tail goes to the head (``compound_head``).
The model does the same. Which pages are compound is fixed at allocation (plain
attributes ``kind``/``head_pfn``/``order``) except for THP, which ``split_huge_page`` can
turn into order-0 pages: for THP pages ``compound_head`` reads the ``thp_head`` field.

``mapcount`` (the PTE mapcount, -1 when not PTE-mapped) and ``compound_mapcount`` (on the
head: PMD mappings - 1) are kept for compound pages only: they decide
``PageTransCompoundMap``. Order-0 pages do not track them.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore import atomic, context, fail
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kernel.operation import current_owner
from pfnlab.kernel.roles import refcount_api, releases_reference
from pfnlab.mm.memmap import host, pfn_to_page, run_ad_hooks, run_free_hooks, run_ref_hooks
from pfnlab.mm.mm_types import (  # struct page, re-exported: pfnlab.mm.page.Page as before
    HUGETLB,
    OTHER,
    THP,
    ZONE_DEVICE,
    ZONE_NORMAL,
    Page,
    page_pinned,
)
from pfnlab.mm.pagemap import put_dev_pagemap
from pfnlab.mm.props import NO_PUT_UNREFERENCED

__all__ = ["HUGETLB", "OTHER", "THP", "ZONE_DEVICE", "ZONE_NORMAL", "Page", "page_pinned"]

# --------------------------------------------------------------------------- ref helpers
def _ledger(page: Page, delta: int, owner: str) -> None:
    if not owner:
        return
    d = dict(page.owners)
    n = d.get(owner, 0) + delta
    if n:
        d[owner] = n
    else:
        d.pop(owner, None)
    page.owners = tuple(sorted(d.items()))


@refcount_api()
def page_ref_inc(page: Page, owner: str | None = None, why: str = "get_page") -> int:
    """include/linux/page_ref.h: atomic_inc(&page->_refcount); returns the old count."""
    owner = current_owner() if owner is None else owner
    old: int = atomic(page, "refcount", lambda c: (c + 1, c))
    _ledger(page, 1, owner)
    if owner:
        run_ref_hooks(page, owner, 1)
    if old == 0:
        run_free_hooks(page)
    return old


@refcount_api()
def page_ref_dec_return(page: Page, owner: str | None = None, why: str = "put_page") -> int:
    """include/linux/page_ref.h: atomic_dec_return; a put on refcount 0 is a finding."""
    owner = current_owner() if owner is None else owner
    if owner:
        run_ref_hooks(page, owner, -1)
    old: int = atomic(page, "refcount", lambda c: (c - 1, c) if c > 0 else (c, c))
    if old <= 0:
        fail(NO_PUT_UNREFERENCED, f"{why} on {page.name} with refcount 0")
    _ledger(page, -1, owner)
    if old == 1:
        run_free_hooks(page)
    return old - 1


@refcount_api()
def page_ref_add_unless_zero(page: Page, owner: str | None = None) -> bool:
    """include/linux/page_ref.h: page_ref_add_unless(page, 1, 0) (speculative get)."""
    owner = current_owner() if owner is None else owner
    # (the thread receives whether it succeeded, not the count: states stay merged)
    ok: bool = atomic(page, "refcount", lambda c: (c + 1, True) if c != 0 else (c, False))
    if ok:
        _ledger(page, 1, owner)
        if owner:
            run_ref_hooks(page, owner, 1)
    return ok


@refcount_api()
def page_ref_freeze(page: Page, count: int) -> bool:
    """include/linux/page_ref.h: cmpxchg(refcount, count, 0)."""
    ok: bool = atomic(page, "refcount", lambda c: (0, True) if c == count else (c, False))
    if ok:
        run_free_hooks(page)
    return ok


@refcount_api()
def set_page_count(page: Page, count: int) -> None:
    """include/linux/page_ref.h: atomic_set(&page->_refcount, count)."""
    page.refcount = count
    run_free_hooks(page)  # the old count is not read (that would be a step): may be 0


# --------------------------------------------------------------------------- predicates
@kfunc
def page_to_pfn(page: Page) -> int:
    """include/asm-generic/memory_model.h v5.4: page - vmemmap (no struct page access).

    Returns the page's pfn."""
    return page.pfn


@kfunc
def compound_head(page: Page) -> Page:
    """include/linux/page-flags.h v5.4: the head page of a compound page, else the page."""
    kind = page.kind
    if kind is None or page.head_pfn == page.pfn:
        return page
    if kind == THP:
        h = page.thp_head
        return page if h is None else pfn_to_page(h)
    return pfn_to_page(page.head_pfn)


@kfunc
def PageCompound(page: Page) -> bool:
    """include/linux/page-flags.h v5.4: PG_head set or a tail page."""
    kind = page.kind
    if kind is None:
        return False
    if kind == THP:
        return page.thp_head is not None
    return True


@kfunc
def PageTransCompound(page: Page) -> bool:
    """include/linux/page-flags.h v5.4: PageCompound (with CONFIG_TRANSPARENT_HUGEPAGE)."""
    return PageCompound(page)


@kfunc
def PageHuge(page: Page) -> bool:
    """mm/hugetlb.c v5.4: compound page whose destructor is the hugetlb one."""
    return page.kind == HUGETLB


@kfunc
def is_transparent_hugepage(page: Page) -> bool:
    """mm/huge_memory.c v5.4 (static there; global from v5.8): a compound page whose head's
    destructor is ``TRANSHUGE_PAGE_DTOR``, a THP (the huge zero page too, which the model
    has not); a hugetlb or driver compound page, or a THP once split, is not one."""
    if not PageCompound(page):
        return False
    return compound_head(page).kind == THP


@kfunc
def PageAnon(page: Page) -> bool:
    """include/linux/page-flags.h v5.4: page->mapping has PAGE_MAPPING_ANON (fixed here)."""
    return page.anon


@kfunc
def PageTransCompoundMap(page: Page) -> bool:
    """include/linux/page-flags.h v5.4: compound and mapped only by a PMD (not by PTEs)."""
    if not PageTransCompound(page):
        return False
    if PageAnon(page):
        return bool(page.mapcount < 0)
    head = compound_head(page)
    return bool(page.mapcount == head.compound_mapcount)


@kfunc
def PageReserved(page: Page) -> bool:
    """include/linux/page-flags.h v5.4: PG_reserved (PF_NO_COMPOUND: the page itself)."""
    return bool(page.reserved)


@kfunc
def is_zone_device_page(page: Page) -> bool:
    """include/linux/mm.h v5.4: page_zonenum(page) == ZONE_DEVICE (a read of page->flags)."""
    return bool(page.zone == ZONE_DEVICE)


@refcount_api()
@kfunc
def page_ref_count(page: Page) -> int:
    """include/linux/page_ref.h v5.4: atomic_read(&page->_refcount) of this page.

    Returns the count (a read of ``refcount``: a scheduling point)."""
    return int(page.refcount)


@kfunc
def page_count(page: Page) -> int:
    """include/linux/mm.h v5.4: the refcount of the compound head."""
    return int(compound_head(page).refcount)


@kfunc
def SetPageDirty(page: Page) -> None:
    """include/linux/page-flags.h v5.4: set PG_dirty on the head (PF_HEAD), raw set_bit."""
    run_ad_hooks(page, "SetPageDirty")
    compound_head(page).dirty = True


@kfunc
def mark_page_accessed(page: Page) -> None:
    """mm/swap.c v5.4: mark the head referenced/active (LRU aging)."""
    run_ad_hooks(page, "mark_page_accessed")
    compound_head(page).accessed = True


# --------------------------------------------------------------------------- get / put
@refcount_api("get_page")
@kfunc
def get_page(page: Page, owner: str | None = None) -> None:
    """include/linux/mm.h v5.4: page_ref_inc(compound_head); a get on refcount 0 is a bug."""
    head = compound_head(page)
    old = page_ref_inc(head, owner, "get_page")
    if old <= 0:
        fail(NO_PUT_UNREFERENCED, f"get_page on {head.name} with refcount 0 (0->1)")


@refcount_api("get_page")
@kfunc
def try_get_page(page: Page, owner: str | None = None) -> bool:
    """include/linux/mm.h v5.4: get_page on the head unless its count is <= 0."""
    return page_ref_add_unless_zero(compound_head(page), owner)


@refcount_api("get_page")
@kfunc
def get_page_unless_zero(page: Page, owner: str | None = None) -> bool:
    """include/linux/mm.h v5.4: page_ref_add_unless(page, 1, 0) on this very page."""
    return page_ref_add_unless_zero(page, owner)


@refcount_api()
@kfunc
def try_get_compound_head(page: Page, refs: int = 1, owner: str | None = None) -> Page | None:
    """mm/gup.c v5.4: speculative reference on the head; NULL if its count is zero."""
    head = compound_head(page)
    for _ in range(refs):
        if not page_ref_add_unless_zero(head, owner):
            return None
    return head


@releases_reference
@refcount_api("put_page")
@kfunc
def put_page(page: Page, owner: str | None = None) -> None:
    """include/linux/mm.h v5.4: devmap-managed pages first, else dec and __put_page at 0."""
    page = compound_head(page)
    if put_devmap_managed_page(page, owner):
        return
    if page_ref_dec_return(page, owner, "put_page") == 0:
        __put_page(page)


@kfunc
def put_devmap_managed_page(page: Page, owner: str | None = None) -> bool:
    """include/linux/mm.h v5.4: FS_DAX/DEVICE_PRIVATE pages (static key on) only."""
    if not host().devmap_managed_key:
        return False
    if not is_zone_device_page(page):
        return False
    pgmap = page.pgmap
    if not pgmap.devmap_managed:
        return False
    __put_devmap_managed_page(page, owner)
    return True


@kfunc
def __put_devmap_managed_page(page: Page, owner: str | None = None) -> None:
    """mm/memremap.c v5.4: free at 1 (page_free wakes layout breakers); __put_page at 0."""
    count = page_ref_dec_return(page, owner, "put_page")
    if count == 1:
        page_free(page)
    elif count == 0 and _mm_version() == "5.4":
        __put_page(page)


@kfunc
def page_free(page: Page) -> None:
    """drivers/nvdimm/pmem.c v5.4 pmem_pagemap_page_free: wake_up_var(&page->_refcount).

    The wake-up is implicit in the model: waiters wait on the refcount field itself.
    """


@kfunc
def __put_page(page: Page) -> None:
    """mm/swap.c v5.4: ZONE_DEVICE -> put_dev_pagemap; other pages go back to the allocator.

    A normal page back in the allocator keeps refcount 0 (that *is* the free state here).
    With mm_version 5.18 a ZONE_DEVICE page reaching 0 is handed to free_zone_device_page,
    which resets the count to 1 and drops no pgmap reference (27674ef6c73f).
    """
    if is_zone_device_page(page):
        if _mm_version() == "5.4":
            put_dev_pagemap(page.pgmap)
        else:
            set_page_count(page, 1)


def _mm_version() -> str:
    ctx: Any = context()
    return str(ctx.mm_version) if ctx is not None else "5.4"
