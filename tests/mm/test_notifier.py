"""MMU notifiers and zap paths: brackets, order against PTE clearing, mapping references."""

from __future__ import annotations

from typing import Any

from pfnlab.explore import Shared
from pfnlab.mm import (
    Host,
    Mm,
    dax_layout_busy_page,
    exit_mmap,
    get_page,
    mmu_notifier_invalidate_range,
    mmu_notifier_register,
    mmu_notifier_release,
    pfn_to_page,
    put_page,
    thp_split_thread,
    unmap_mapping_range,
    vm_munmap,
    zap_page_range,
)
from pfnlab.mm import (
    __get_user_pages_fast as gup_fast,
)


class Recorder(Shared):
    """A subscriber that records what it saw (plain-mode tests only)."""

    def __init__(self, name: str, host: Host) -> None:
        super().__init__(name)
        self.host = host
        self.calls: list[tuple[Any, ...]] = []

    def _ptes(self, start: int, end: int) -> tuple[Any, ...]:
        return tuple(
            self.host.mm.ptes[h].val if h in self.host.mm.ptes else "-" for h in range(start, end)
        )

    def invalidate_range_start(self, mm: Mm, start: int, end: int) -> None:
        self.calls.append(("start", start, end, self._ptes(start, end)))

    def invalidate_range_end(self, mm: Mm, start: int, end: int) -> None:
        self.calls.append(("end", start, end, self._ptes(start, end)))

    def release(self, mm: Mm) -> None:
        self.calls.append(("release",))


def test_zap_anon_brackets_and_frees_after_end(host: Host) -> None:
    r = host.add_anon(2)
    rec = Recorder("rec", host)
    mmu_notifier_register(host.mm, rec)
    zap_page_range(r.vma, r.start, r.end)
    (s, e) = rec.calls
    assert s[0] == "start" and s[1:3] == (r.start, r.end)
    assert all(v is not None for v in s[3]), "PTEs are cleared after range_start"
    assert e[0] == "end" and all(v is None for v in e[3])
    assert pfn_to_page(r.pfn).refcount == 0 and pfn_to_page(r.pfn + 1).refcount == 0


def test_unmap_mapping_range_devdax_takes_no_page_reference(host: Host) -> None:
    r = host.add_devdax(2)
    rec = Recorder("rec", host)
    mmu_notifier_register(host.mm, rec)
    assert r.mapping is not None
    unmap_mapping_range(r.mapping, 0, 0, 1)
    assert [c[0] for c in rec.calls] == ["start", "end"]
    assert all(pfn_to_page(p).refcount == 1 for p in range(r.pfn, r.pfn + 2))
    assert all(host.mm.ptes[h].val is None for h in r.hvas)


def test_release_unhashes_subscribers(host: Host) -> None:
    r = host.add_anon(1)
    rec = Recorder("rec", host)
    mmu_notifier_register(host.mm, rec)
    mmu_notifier_release(host.mm)
    assert rec.calls == [("release",)]
    zap_page_range(r.vma, r.start, r.end)
    assert rec.calls == [("release",)]


def test_exit_mmap_releases_then_unmaps(host: Host) -> None:
    a = host.add_anon(1)
    h = host.add_hugetlb(1)
    rec = Recorder("rec", host)
    mmu_notifier_register(host.mm, rec)
    exit_mmap(host.mm)
    assert rec.calls == [("release",)]
    assert pfn_to_page(a.pfn).refcount == 0
    assert pfn_to_page(h.pfn).refcount == 1, "the hugetlbfs page cache keeps its reference"
    assert host.mm.vmas == ()


def test_munmap(host: Host) -> None:
    a = host.add_anon(1)
    rec = Recorder("rec", host)
    mmu_notifier_register(host.mm, rec)
    vm_munmap(host.mm, a.start, a.end)
    assert [c[0] for c in rec.calls] == ["start", "end"]
    assert a.vma not in host.mm.vmas and pfn_to_page(a.pfn).refcount == 0


def test_fsdax_layout_busy_page(host: Host) -> None:
    r = host.add_fsdax(2)
    assert r.mapping is not None
    assert dax_layout_busy_page(r.mapping) is None
    page = pfn_to_page(r.pfn + 1)
    get_page(page, "kvm")
    assert dax_layout_busy_page(r.mapping) is page
    put_page(page, "kvm")
    assert dax_layout_busy_page(r.mapping) is None


def test_thp_split_page(host: Host) -> None:
    r = host.add_thp(1)
    rec = Recorder("rec", host)
    mmu_notifier_register(host.mm, rec)
    assert thp_split_thread(host.mm, r.start)
    head, tail = pfn_to_page(r.pfn), pfn_to_page(r.pfn + 1)
    assert head.refcount == 1 and tail.refcount == 1
    assert head.thp_head is None and tail.thp_head is None
    assert rec.calls and rec.calls[0][0] == "start"
    assert gup_fast(host.mm, r.start + 1, True) is tail and tail.refcount == 2


def test_thp_split_page_fails_while_pinned(host: Host) -> None:
    r = host.add_thp(1)
    pinned = gup_fast(host.mm, r.start, True, "kvm")
    assert pinned is not None
    assert not thp_split_thread(host.mm, r.start)
    head = pfn_to_page(r.pfn)
    assert head.thp_head == head.pfn, "still compound"
    assert head.refcount == 1 + 2, "two PTE mappings and the pin"
    put_page(pinned, "kvm")
    assert thp_split_thread(host.mm, r.start)


class RangeRecorder(Recorder):
    """A subscriber with ``->invalidate_range`` (an IOMMU, KVM's APIC-access page)."""

    def invalidate_range(self, mm: Mm, start: int, end: int) -> None:
        self.calls.append(("range", start, end, self._ptes(start, end)))


def test_invalidate_range_runs_before_each_range_end(host: Host) -> None:
    """v5.4 __mmu_notifier_invalidate_range_end: ->invalidate_range, then
    ->invalidate_range_end, for each subscriber that has it; one without it is skipped."""
    r = host.add_anon(1)
    rec, plain = RangeRecorder("rec", host), Recorder("plain", host)
    mmu_notifier_register(host.mm, rec)
    mmu_notifier_register(host.mm, plain)
    zap_page_range(r.vma, r.start, r.end)
    assert [c[0] for c in rec.calls] == ["start", "range", "end"]
    assert rec.calls[1][1:] == (r.start, r.end, (None,))  # after the PTEs are cleared
    assert [c[0] for c in plain.calls] == ["start", "end"]
    mmu_notifier_invalidate_range(host.mm, r.start, r.end)
    assert rec.calls[-1][0] == "range" and [c[0] for c in plain.calls] == ["start", "end"]


def test_kvm_runs_its_arch_invalidate_range_hook(host: Host) -> None:
    """v5.4 KVM calls kvm_arch_mmu_notifier_invalidate_range from invalidate_range_start,
    after mmu_lock (it subscribes no ->invalidate_range): an override (a mapping KVM must
    drop when the PTE changes) is called once with the zapped range."""
    from pfnlab import vm_on
    from pfnlab.explore import set_context
    from pfnlab.kernel.world import World

    r = host.add_anon(1)
    vm_on(host, [r], 1)
    calls: list[tuple[int, int]] = []
    set_context(World(host=host, overrides={
        "kvm_arch_mmu_notifier_invalidate_range": lambda kvm, a, b: calls.append((a, b))}))
    zap_page_range(r.vma, r.start, r.end)
    assert calls == [(r.start, r.end)]
