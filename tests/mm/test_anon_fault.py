"""Anonymous faults (pfnlab/mm/anon.py): memory zapped by MADV_DONTNEED faults in again,
a write with a new zeroed page, a read with the zero page; a KVM design that skips
mmu_notifier_retry keeps an SPTE to the page the zap freed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import pfnlab
from pfnlab import Check, instance, scenario, variant, vcpu_faults, vm_on
from pfnlab.api import registries_restored
from pfnlab.mm import (
    ALLOC,
    MAPPING,
    Host,
    get_user_pages_unlocked,
    pfn_to_page,
    put_page,
    zap_page_range,
)
from pfnlab.mm.vma import PteVal


def test_a_write_fault_after_dontneed_maps_a_new_zeroed_page(host: Host) -> None:
    ram = host.add_anon(1, refault=1)
    assert ram.pool is not None
    old, new = pfn_to_page(ram.pfn), ram.pool.pages[0]
    new.data = 5  # what the page held when it was freed
    zap_page_range(ram.vma, ram.start, ram.end)
    assert host.mm.ptes[ram.start].val is None and old.refcount == 0
    page = get_user_pages_unlocked(host.mm, ram.start, True, "me")
    assert page is new and new.data == 0
    assert host.mm.ptes[ram.start].val == PteVal(new.pfn, write=True)
    assert dict(new.owners) == {MAPPING: 1, "me": 1} and new.refcount == 2
    put_page(new, "me")
    # another zap frees it (refcount 0: back in the pool), and the next fault reuses it
    zap_page_range(ram.vma, ram.start, ram.end)
    assert new.refcount == 0 and ALLOC not in dict(new.owners)
    assert get_user_pages_unlocked(host.mm, ram.start, True, "me") is new


def test_a_read_fault_maps_the_zero_page_and_no_pool_means_no_refault(host: Host) -> None:
    ram = host.add_anon(1, refault=1)
    zap_page_range(ram.vma, ram.start, ram.end)
    page = get_user_pages_unlocked(host.mm, ram.start, False, "me")
    assert page is host.zero_page
    assert host.mm.ptes[ram.start].val == PteVal(host.zero_pfn, write=False, special=True)
    plain = host.add_anon(1)  # built without refault: a none PTE still fails the fault
    zap_page_range(plain.vma, plain.start, plain.end)
    assert get_user_pages_unlocked(host.mm, plain.start, True, "me") is None


@pytest.fixture
def dontneed() -> Iterator[None]:
    with registries_restored():

        @scenario("fault-vs-dontneed", sizes={"faults": 2},
                  properties=["refs-balanced", "no-stale-spte", "no-spte-to-freed"],
                  goals=["refaulted"])
        def build(variant: object, sz: dict[str, int]) -> object:
            """a vCPU faults twice while the host zaps the memory (MADV_DONTNEED)"""
            host = Host()
            ram = host.add_anon(1, refault=1)
            s = vm_on(host, [ram], 1)
            pte = host.mm.ptes[ram.start]
            assert ram.pool is not None
            new = ram.pool.pages[0].pfn

            def zap() -> None:
                zap_page_range(ram.vma, ram.start, ram.end)

            refaulted = Check("refaulted", lambda: isinstance(pte.val, PteVal) and
                              pte.val.pfn == new, stable=True)
            return instance(s, {"zap": zap, "vcpu0": vcpu_faults(s, 0, [0] * sz["faults"])},
                            ["refs-balanced", "no-stale-spte", "no-spte-to-freed"],
                            [refaulted])

        def never(kvm: object, mmu_seq: int) -> bool:
            return False

        variant("no-retry", parent="v5.4", overrides={"mmu_notifier_retry": never},
                summary="mmu_notifier_retry never sees an invalidation")
        yield


def test_v54_holds_across_a_dontneed_and_refault(dontneed: None) -> None:
    res = pfnlab.check("v5.4", "fault-vs-dontneed")
    assert res.ok and res.exhaustive and not res.search.goals_missed, res.summary()


def test_skipping_the_retry_keeps_an_spte_to_the_zapped_page(dontneed: None) -> None:
    res = pfnlab.check("no-retry", "fault-vs-dontneed")
    assert res.violated == ["no-stale-spte", "no-spte-to-freed"], res.summary()
    # the fault's gup read the PTE inside the zap's bracket, after KVM's zap: the SPTE it
    # installs maps what the zap is about to clear (I4), and later a freed page (I5)
    assert [f.message for f in res.findings] == [  # type: ignore[attr-defined]
        "kvm.spte[0x0] maps pfn 0x103 (installed by vcpu0:fault) but hva 0x10 was "
        "invalidated after the pfn was looked up",
        "kvm.spte[0x0] maps pfn 0x103 but its page was freed (refcount 0)"]
