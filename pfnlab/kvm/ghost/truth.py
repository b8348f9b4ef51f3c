"""Host truth: what a page *is*, whatever the variant under test classifies it as (no steps).

The ledger's hooks decide from these. They read the host's objects with
:meth:`Field.unobserved <pfnlab.explore.Field.unobserved>`: no scheduling point, no
footprint, no recorded read. That is sound only where the decision cannot depend on an
unordered write by another thread, or the hook says it does with
:func:`~pfnlab.kvm.ghost.ledger.depends_on` (a ghost write that conflicts with every write
of the field it names).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pfnlab.explore import is_freed
from pfnlab.kvm.ghost.ledger import current_host, observe
from pfnlab.mm.page import THP, ZONE_DEVICE, Page
from pfnlab.mm.vma import Pte

if TYPE_CHECKING:
    from pfnlab.kvm.kvm import Kvm


def memmap() -> dict[int, Page]:
    """The host's memmap (pfn -> struct page), empty without a host."""
    h = current_host()
    return h.memmap if h is not None else {}


def head_pfn(page: Page) -> int:
    """The pfn whose refcount a reference on ``page`` pins (its compound head)."""
    if page.kind is None:
        return page.pfn
    if page.kind == THP:
        h = Page.thp_head.unobserved(page)
        return page.pfn if h is None else h
    return page.head_pfn


def untracked_reason(page: Page) -> str:
    """Why A/D bits must not be set on ``page`` (I6), or "" if they may."""
    if Page.zone.unobserved(page) == ZONE_DEVICE:
        return "ZONE_DEVICE"
    h = current_host()
    if h is not None and page.pfn == h.zero_pfn:
        return "ZERO_PAGE"
    if Page.reserved.unobserved(page):
        return "PG_reserved"
    head = memmap().get(head_pfn(page), page)
    if Page.refcount.unobserved(head) == 0:
        return "non-refcounted (count 0)"
    return ""


def page_is_thp_head(pfn: int) -> str:
    """Why ``pfn`` is not the head of a THP (I7), or "" if it is."""
    page = memmap().get(pfn)
    if page is None:
        return "no struct page"
    if page.kind != THP:
        return f"{page.kind or 'order-0'} page, not a THP"
    if Page.thp_head.unobserved(page) != pfn:
        return "not a THP head (split, or a tail)"
    return ""


def host_level_truth(kvm: Kvm, hva: int) -> int | None:
    """How many pages the primary MMU maps at ``hva`` with one entry (None: unknown)."""
    mm_ = kvm.mm
    pmd_of = getattr(mm_, "pmd", None)
    if pmd_of is None:
        return None
    pmd = pmd_of(hva)
    if pmd is None:
        return 1
    if getattr(Pte.val.unobserved(pmd), "huge", False):
        return int(mm_.pmd_pages)
    return 1


def freed_reason(pfn: int, norefs: frozenset[int] = frozenset()) -> str:
    """Why ``pfn``'s page counts as freed (I5), or "" (no steps, no recorded reads).

    Freed: the memmap was removed, or the (head) page is at refcount 0 (back in the
    allocator or returned to its pgmap), unless its head pfn is in ``norefs`` (pages that
    are legitimately at 0, e.g. non-refcounted VM_PFNMAP pages).
    """
    pages = memmap()
    page = pages.get(pfn)
    if page is None:
        return ""
    hp = head_pfn(page)
    head = pages.get(hp, page)
    if is_freed(page) or is_freed(head):
        return "its memmap was removed"
    if Page.refcount.unobserved(head) == 0 and hp not in norefs:
        return "its page was freed (refcount 0)"
    return ""


def refcount_zero_heads(host: Any) -> frozenset[int]:
    """Head pfns at refcount 0 now (at set-up: non-refcounted pages, exempt from I5)."""
    return frozenset(
        pfn
        for pfn, p in host.memmap.items()
        if head_pfn(p) == pfn and Page.refcount.unobserved(p) == 0
    )


def device_pgmap(pfn: int) -> Any:
    """The dev_pagemap of ``pfn``'s page if it is a ZONE_DEVICE page, else None."""
    page = memmap().get(pfn)
    if page is None or Page.zone.unobserved(page) != ZONE_DEVICE:
        return None
    return Page.pgmap.unobserved(page)


def teardown_owns(pfn: int) -> str:
    """Why a leak on ``pfn`` is left to the teardown to report, or "" (no steps).

    A device page whose dev_pagemap teardown has begun (``DevPagemap.teardown``), or a page
    whose memmap is already gone: the leak shows up as the teardown's hang (I8, mm 5.4) or
    at the end of the execution (final :func:`~pfnlab.kvm.ghost.checks.check_refs_balanced`).
    """
    page = memmap().get(pfn)
    if page is None:
        return ""
    if is_freed(page):
        return "memmap removed"
    pgmap = device_pgmap(pfn)
    if pgmap is not None and observe(pgmap, "teardown"):
        return f"{pgmap.name} teardown in progress"
    return ""
