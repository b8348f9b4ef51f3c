"""A fault on a tail page of a non-THP compound page: get_page goes to the head.

Issue 10's false alarm: the ledger's dead-page check read the tail's own ``_refcount``
(always 0) where the kernel's ``get_page`` increments the head's (refcount 1), so every
design reported ``no-put-unreferenced: get-dead-page`` and the execution ended before the
real question was asked.
"""

from __future__ import annotations

import pytest

from pfnlab import Host, api, instance, scenario, vcpu_exit, vcpu_fault, vm_exit, vm_on
from pfnlab.api import registries_restored

PROPS = ["no-put-unreferenced", "refs-balanced", "huge-only-thp"]


def _register() -> None:
    @scenario("compound-tail-fault", sizes={"vcpus": 1}, properties=PROPS)
    def build(variant, sz):  # type: ignore[no-untyped-def]
        """a vCPU faults on a tail page of a compound page mapped VM_PFNMAP, then exits"""
        host = Host()
        comp = host.add_compound(1)
        s = vm_on(host, [comp], sz["vcpus"])

        def vcpu0() -> None:
            vcpu_fault(s.vcpus[0], 1)  # gfn 1: the second page of the compound page
            vcpu_exit(s.vcpus[0])

        def admin() -> None:
            vm_exit(s.kvm)

        return instance(s, {"vcpu0": vcpu0, "admin": admin}, PROPS)


def test_a_fault_on_a_compound_tail_takes_the_heads_reference() -> None:
    """No false get-dead-page on any design; what remains is the real bug: designs that
    shift the THP reference (up to v5.4 and its alternatives) do it onto a compound page
    that is not a THP; v5.6 on (a host page-table walk, no shift) are clean."""
    with registries_restored():
        _register()
        for design in ("v5.3", "v5.4", "hildenbrand", "v5.6", "v6.0", "v6.13"):
            res = api.check(design, "compound-tail-fault")
            assert res.exhaustive
            expect = [] if design in ("v5.6", "v6.0", "v6.13") else ["huge-only-thp"]
            assert res.violated == expect, (design, res.summary())
            for f in res.findings:
                assert f.message == "thp-shift-non-thp on pfn 0x104: other page, not a THP"


def test_a_partly_mapped_compound_page_is_not_mapped_huge() -> None:
    """``add_compound(mapped=1)``: the driver maps only the head of an order-1 compound
    page. A fault on it finds PageTransCompoundMap true: the designs that trust it (up to
    v5.4) map both pages huge though the host maps one (huge-only-thp); those that read
    the host's page-table level (v5.6 on) map 4K. The unmapped tail is no PTE at all."""
    with registries_restored():
        @scenario("compound-partly-mapped", sizes={"vcpus": 1}, properties=PROPS)
        def build(variant, sz):  # type: ignore[no-untyped-def]
            """a vCPU faults on the mapped head of a compound page whose tail is unmapped"""
            host = Host()
            comp = host.add_compound(1, order=1, mapped=1)
            assert host.mm.ptes[comp.start].val is not None
            assert host.mm.ptes[comp.start + 1].val is None
            s = vm_on(host, [comp], sz["vcpus"])

            def vcpu0() -> None:
                vcpu_fault(s.vcpus[0], 0)
                vcpu_exit(s.vcpus[0])

            def admin() -> None:
                vm_exit(s.kvm)

            return instance(s, {"vcpu0": vcpu0, "admin": admin}, PROPS)

        for design in ("v5.4", "v5.6", "v6.0", "v6.13"):
            res = api.check(design, "compound-partly-mapped")
            assert res.exhaustive
            expect = [] if design != "v5.4" else ["huge-only-thp"]
            assert res.violated == expect, (design, res.summary())
        with pytest.raises(ValueError, match="map 1 to 2 subpages"):
            Host().add_compound(1, order=1, mapped=3)
