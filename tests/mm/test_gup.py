"""gup fast/slow, follow_pfn, fixup_user_fault, host page-table levels, per pfn class."""

from __future__ import annotations

from pfnlab.mm import (
    VM_IO,
    VM_MIXEDMAP,
    VM_PFNMAP,
    Host,
    __get_user_pages_fast,
    find_vma,
    find_vma_intersection,
    fixup_user_fault,
    follow_pfn,
    get_user_pages_unlocked,
    kill_dev_dax,
    lookup_address_in_mm,
    percpu_ref_kill,
    pfn_to_page,
    put_page,
    vma_kernel_pagesize,
)

gup_fast = __get_user_pages_fast


def test_anon_fast_and_slow(host: Host) -> None:
    r = host.add_anon(2)
    page = pfn_to_page(r.pfn + 1)
    got = gup_fast(host.mm, r.start + 1, True, "kvm")
    assert got is page and page.refcount == 2 and page.held_by("kvm") == 1
    got = get_user_pages_unlocked(host.mm, r.start + 1, True, "kvm")
    assert got is page and page.refcount == 3
    put_page(page, "kvm")
    put_page(page, "kvm")
    assert page.refcount == 1


def test_read_only_anon_refuses_write(host: Host) -> None:
    r = host.add_anon(1, writable=False)
    assert gup_fast(host.mm, r.start, True) is None
    assert get_user_pages_unlocked(host.mm, r.start, True) is None
    assert pfn_to_page(r.pfn).refcount == 1
    assert gup_fast(host.mm, r.start, False) is pfn_to_page(r.pfn)


def test_zero_page_slow_path_only(host: Host) -> None:
    r = host.add_zero(1)
    assert gup_fast(host.mm, r.start, False) is None, "zero pfn PTE is special"
    assert get_user_pages_unlocked(host.mm, r.start, True) is None, "would COW"
    got = get_user_pages_unlocked(host.mm, r.start, False, "kvm")
    assert got is host.zero_page and host.zero_page.refcount == 2


def test_devdax_gup_holds_page_not_pgmap(host: Host) -> None:
    r = host.add_devdax(2)
    assert r.pgmap is not None
    before = r.pgmap.peek_count()
    page = gup_fast(host.mm, r.start + 1, True, "kvm")
    assert page is pfn_to_page(r.pfn + 1) and page.refcount == 2
    assert r.pgmap.peek_count() == before, "the transient pgmap reference is put"
    slow = get_user_pages_unlocked(host.mm, r.start, True, "kvm")
    assert slow is pfn_to_page(r.pfn) and slow.refcount == 2
    assert r.pgmap.peek_count() == before


def test_devdax_gup_fails_once_pgmap_killed(host: Host) -> None:
    r = host.add_devdax(1)
    assert r.pgmap is not None
    percpu_ref_kill(r.pgmap)
    assert gup_fast(host.mm, r.start, True) is None
    assert get_user_pages_unlocked(host.mm, r.start, True) is None
    assert pfn_to_page(r.pfn).refcount == 1


def test_devdax_2m(host: Host) -> None:
    r = host.add_devdax(4, align=2)
    assert vma_kernel_pagesize(r.vma) == 2
    assert lookup_address_in_mm(host.mm, r.start + 1) == 2
    page = gup_fast(host.mm, r.start + 3, True)
    assert page is pfn_to_page(r.pfn + 3) and page.refcount == 2
    assert pfn_to_page(r.pfn + 2).refcount == 1, "devdax pages are not compound in 5.4"


def test_thp_and_hugetlb(host: Host) -> None:
    t = host.add_thp(1)
    h = host.add_hugetlb(1)
    assert vma_kernel_pagesize(t.vma) == 1 and vma_kernel_pagesize(h.vma) == 2
    assert lookup_address_in_mm(host.mm, t.start) == 2
    assert lookup_address_in_mm(host.mm, h.start + 1) == 2
    assert lookup_address_in_mm(host.mm, host.add_anon(1).start) == 1
    sub = gup_fast(host.mm, t.start + 1, True)
    assert sub is pfn_to_page(t.pfn + 1) and pfn_to_page(t.pfn).refcount == 2
    sub = get_user_pages_unlocked(host.mm, h.start + 1, True)
    assert sub is pfn_to_page(h.pfn + 1) and pfn_to_page(h.pfn).refcount == 3


def test_pfnmap_classes(host: Host) -> None:
    io = host.add_pfnmap_io(1)
    ref = host.add_pfnmap_pages(1)
    zero = host.add_pfnmap_pages(1, refcounted=False)
    for r in (io, ref, zero):
        assert r.vma.flags & VM_IO and r.vma.flags & VM_PFNMAP
        assert gup_fast(host.mm, r.start, True) is None
        assert get_user_pages_unlocked(host.mm, r.start, True) is None
        assert follow_pfn(r.vma, r.start) == r.pfn
        assert fixup_user_fault(host.mm, r.start, True)
    assert pfn_to_page(ref.pfn).refcount == 1 and pfn_to_page(zero.pfn).refcount == 0
    anon = host.add_anon(1)
    assert follow_pfn(anon.vma, anon.start) is None, "-EINVAL outside VM_IO|VM_PFNMAP"


def test_mixedmap_pages_are_gupable(host: Host) -> None:
    r = host.add_pfnmap_pages(1, mixed=True)
    assert r.vma.flags & VM_MIXEDMAP
    page = gup_fast(host.mm, r.start, True)
    assert page is pfn_to_page(r.pfn) and page.refcount == 3


def test_find_vma_kernel_semantics(host: Host) -> None:
    a = host.add_anon(1)
    b = host.add_anon(1)
    assert find_vma(host.mm, a.start) is a.vma
    gap = a.end
    assert gap < b.start
    assert find_vma(host.mm, gap) is b.vma, "find_vma returns the next vma above"
    assert find_vma_intersection(host.mm, gap, gap + 1) is None
    assert find_vma(host.mm, b.end + 100) is None


def test_devdax_fault_refills_until_killed(host: Host) -> None:
    r = host.add_devdax(1, populated=False)
    assert r.dax is not None
    assert gup_fast(host.mm, r.start, True) is None
    page = get_user_pages_unlocked(host.mm, r.start, True)
    assert page is pfn_to_page(r.pfn), "the dax fault handler installs the devmap PTE"
    put_page(page)
    kill_dev_dax(r.dax)
    assert host.mm.ptes[r.start].val is None
    assert not fixup_user_fault(host.mm, r.start, True), "SIGBUS once the device is dead"
    assert get_user_pages_unlocked(host.mm, r.start, True) is None
