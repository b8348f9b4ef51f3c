"""struct page: refcount helpers, compound heads, predicates, put_page paths per class."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pfnlab.explore import ModelViolation
from pfnlab.mm import (
    BASELINE,
    NO_PUT_UNREFERENCED,
    Host,
    PageCompound,
    PageHuge,
    PageReserved,
    PageTransCompoundMap,
    SetPageDirty,
    compound_head,
    get_page,
    get_page_unless_zero,
    is_transparent_hugepage,
    is_zone_device_page,
    mark_page_accessed,
    page_count,
    page_ref_count,
    page_to_pfn,
    pfn_to_page,
    put_page,
    split_huge_page,
    split_huge_pmd,
    try_get_compound_head,
)


def test_get_put_anon(host: Host) -> None:
    page = pfn_to_page(host.add_anon(1).pfn)
    assert page_count(page) == 1
    get_page(page, "kvm")
    assert page_count(page) == 2 and page.held_by("kvm") == 1
    put_page(page, "kvm")
    assert page_count(page) == 1 and page.held_by("kvm") == 0
    assert page_to_pfn(page) == page.pfn


def test_put_on_zero_refcount_is_a_finding(host: Host) -> None:
    page = pfn_to_page(host.add_pfnmap_pages(1, refcounted=False).pfn)
    with pytest.raises(ModelViolation) as e:
        put_page(page)
    assert e.value.prop == NO_PUT_UNREFERENCED
    assert page.refcount == 0, "a failed put must not drive the count negative"


def test_get_on_zero_refcount_is_a_finding(host: Host) -> None:
    page = pfn_to_page(host.add_pfnmap_pages(1, refcounted=False).pfn)
    assert not get_page_unless_zero(page)
    with pytest.raises(ModelViolation) as e:
        get_page(page)
    assert e.value.prop == NO_PUT_UNREFERENCED
    assert "(0->1)" in e.value.message


def test_anon_put_to_zero_returns_page_to_allocator(host: Host) -> None:
    page = pfn_to_page(host.add_anon(1).pfn)
    put_page(page)
    assert page.refcount == 0


def test_thp_refcount_lives_in_the_head(host: Host) -> None:
    r = host.add_thp(1)
    head, tail = pfn_to_page(r.pfn), pfn_to_page(r.pfn + 1)
    assert compound_head(tail) is head and compound_head(head) is head
    assert PageCompound(head) and PageCompound(tail) and not PageHuge(tail)
    assert page_ref_count(tail) == 0 and page_count(tail) == 1
    get_page(tail, "kvm")
    assert head.refcount == 2 and tail.refcount == 0
    assert not get_page_unless_zero(tail), "tail _refcount is 0"
    assert try_get_compound_head(tail) is head and head.refcount == 3
    put_page(tail, "kvm")
    put_page(head)
    assert head.refcount == 1


def test_page_trans_compound_map(host: Host) -> None:
    thp = host.add_thp(1)
    huge = host.add_hugetlb(1)
    comp = host.add_compound(1)
    anon = host.add_anon(1)
    dax = host.add_devdax(1)
    assert PageTransCompoundMap(pfn_to_page(thp.pfn + 1))
    assert not PageTransCompoundMap(pfn_to_page(huge.pfn + 1))
    assert PageHuge(pfn_to_page(huge.pfn))
    # a non-THP compound page with no PTE or PMD mapping counts passes the 5.4 check
    assert PageTransCompoundMap(pfn_to_page(comp.pfn + 1))
    assert not PageTransCompoundMap(pfn_to_page(anon.pfn))
    assert not PageTransCompoundMap(pfn_to_page(dax.pfn))
    split_huge_pmd(host.mm, thp.start)
    assert not PageTransCompoundMap(pfn_to_page(thp.pfn + 1))
    assert PageCompound(pfn_to_page(thp.pfn + 1)), "split_huge_pmd keeps the compound page"
    assert pfn_to_page(thp.pfn).refcount == 2, "each PTE mapping holds a head reference"


def test_reserved_and_zone_device(host: Host) -> None:
    dax = pfn_to_page(host.add_devdax(1).pfn)
    fs = pfn_to_page(host.add_fsdax(1).pfn)
    anon = pfn_to_page(host.add_anon(1).pfn)
    assert PageReserved(dax) and is_zone_device_page(dax)
    assert PageReserved(fs) and is_zone_device_page(fs)
    assert PageReserved(host.zero_page) and not is_zone_device_page(host.zero_page)
    assert not PageReserved(anon) and not is_zone_device_page(anon)
    assert dax.refcount == 1 and dax.held_by(BASELINE) == 1


def test_dirty_and_accessed_go_to_the_head(host: Host) -> None:
    r = host.add_thp(1)
    SetPageDirty(pfn_to_page(r.pfn + 1))
    mark_page_accessed(pfn_to_page(r.pfn + 1))
    head = pfn_to_page(r.pfn)
    assert head.dirty and head.accessed
    assert not pfn_to_page(r.pfn + 1).dirty


def test_devdax_put_to_zero_drops_the_page_pgmap_ref(host: Host) -> None:
    r = host.add_devdax(2)
    assert r.pgmap is not None
    assert r.pgmap.peek_count() == 1 + 2  # initial ref + one per page
    page = pfn_to_page(r.pfn)
    get_page(page, "kvm")
    put_page(page, "kvm")
    assert r.pgmap.peek_count() == 3
    put_page(page)  # the baseline reference (memunmap_pages)
    assert page.refcount == 0 and r.pgmap.peek_count() == 2


def test_fsdax_is_free_at_one(host: Host) -> None:
    r = host.add_fsdax(1)
    assert host.devmap_managed_key and r.pgmap is not None
    page = pfn_to_page(r.pfn)
    get_page(page, "kvm")
    put_page(page, "kvm")  # 2 -> 1: page_free, pgmap untouched
    assert page.refcount == 1 and r.pgmap.peek_count() == 2
    put_page(page)  # 1 -> 0: __put_page -> put_dev_pagemap
    assert page.refcount == 0 and r.pgmap.peek_count() == 1


def test_5_18_device_page_at_zero_keeps_pgmap_ref(make_host: Callable[..., Host]) -> None:
    host = make_host("5.18")
    r = host.add_devdax(1)
    assert r.pgmap is not None
    page = pfn_to_page(r.pfn)
    put_page(page)
    assert page.refcount == 1, "free_zone_device_page resets the count to 1"
    assert r.pgmap.peek_count() == 2


def test_is_transparent_hugepage_asks_the_destructor_not_the_mapping(host: Host) -> None:
    """mm/huge_memory.c: THP's compound destructor, whether or not a PMD maps it (unlike
    PageTransCompoundMap); a hugetlb or driver compound page is none, a split THP no more."""
    thp = host.add_thp(1)
    ptes = host.add_thp(1, mapped=[0])
    assert is_transparent_hugepage(pfn_to_page(thp.pfn))
    assert is_transparent_hugepage(pfn_to_page(thp.pfn + 1))
    assert is_transparent_hugepage(pfn_to_page(ptes.pfn + 1))
    assert not PageTransCompoundMap(pfn_to_page(ptes.pfn))
    assert not is_transparent_hugepage(pfn_to_page(host.add_hugetlb(1).pfn + 1))
    assert not is_transparent_hugepage(pfn_to_page(host.add_compound(1).pfn + 1))
    assert not is_transparent_hugepage(pfn_to_page(host.add_devdax(1).pfn))
    assert not is_transparent_hugepage(pfn_to_page(host.add_anon(1).pfn))
    head = pfn_to_page(thp.pfn)
    get_page(head)
    assert split_huge_page(host.mm, head)
    assert not is_transparent_hugepage(head)
    assert not is_transparent_hugepage(pfn_to_page(thp.pfn + 1))
