"""A PMD-mapped fsdax file: a devmap huge PMD over order-0 ZONE_DEVICE pages."""

from __future__ import annotations

import pytest

from pfnlab.mm import (
    Host,
    PageCompound,
    PageTransCompoundMap,
    __get_user_pages_fast,
    get_user_pages_unlocked,
    lookup_address_in_mm,
    pfn_to_page,
    vma_kernel_pagesize,
)


def test_pmd_mapped_fsdax_pages_are_not_compound(host: Host) -> None:
    r = host.add_fsdax(4, align=2, huge=True)
    assert r.kind == "fsdax" and r.pfn % 2 == 0 and r.start % 2 == 0
    for hva in r.hvas:
        pmd = host.mm.pmd(hva)
        assert pmd is not None and pmd.val.huge and pmd.val.devmap
        assert lookup_address_in_mm(host.mm, hva) == 2
    assert host.mm.pmd(r.start + 2).val.pfn == r.pfn + 2  # one PMD per 2M
    assert vma_kernel_pagesize(r.vma) == 1  # no ->pagesize: fsdax is not devdax
    for p in r.pages:
        assert not PageCompound(p) and not PageTransCompoundMap(p) and p.refcount == 1
    assert host.devmap_managed_key


def test_gup_pins_the_subpage_the_pmd_maps(host: Host) -> None:
    r = host.add_fsdax(2, align=2, huge=True)
    page = __get_user_pages_fast(host.mm, r.start + 1, True, "kvm")
    assert page is pfn_to_page(r.pfn + 1) and page.refcount == 2
    assert pfn_to_page(r.pfn).refcount == 1, "no head to take the reference: not compound"
    page = get_user_pages_unlocked(host.mm, r.start, True)
    assert page is pfn_to_page(r.pfn) and page.refcount == 2


def test_aligned_fsdax_without_huge_is_mapped_4k(host: Host) -> None:
    r = host.add_fsdax(2, align=2)
    assert r.pfn % 2 == 0
    assert [lookup_address_in_mm(host.mm, h) for h in r.hvas] == [1, 1]
    assert host.mm.ptes[r.start + 1].val.pfn == r.pfn + 1


@pytest.mark.parametrize(("kw", "msg"), [
    ({"huge": True}, "needs align=2"),
    ({"align": 3}, "align must be 1 or 2"),
])
def test_fsdax_set_up_errors(host: Host, kw: dict[str, object], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        host.add_fsdax(2, **kw)  # type: ignore[arg-type]
