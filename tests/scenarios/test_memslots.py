"""Memslot placement and faults outside every memslot (issue 10: a vacuous pass).

``vm_on`` aligns each memslot to a 2M boundary, so a second one-page region starts at gfn
2; a fault on gfn 1 used to do nothing at all, and the check said "no finding,
exhaustive". Now such a fault is refused, naming the memslots, and placement can be given.
"""

from __future__ import annotations

import pytest

from pfnlab import Host, api, instance, scenario, vcpu_faults, vm_exit, vm_on
from pfnlab.api import registries_restored


def _register(gfns: list[int] | None, fault_gfn: int) -> None:
    @scenario("two-regions", sizes={"vcpus": 1}, properties=["refs-balanced"])
    def build(variant, sz):  # type: ignore[no-untyped-def]
        """a vCPU faults on the second of two one-page regions"""
        host = Host()
        a = host.add_anon(1, name="anon0")
        b = host.add_anon(1, name="anon1")
        s = vm_on(host, [a, b], sz["vcpus"], gfns=gfns)
        return instance(s, {"vcpu0": vcpu_faults(s, 0, [fault_gfn], exit_vcpu=True),
                            "admin": lambda: vm_exit(s.kvm)}, ["refs-balanced"])


def test_a_fault_outside_every_memslot_is_refused_at_set_up() -> None:
    with registries_restored():
        _register(None, 1)
        with pytest.raises(ValueError) as e:
            api.check("v5.4", "two-regions")
    assert str(e.value) == (
        "gfn 0x1 is in no memslot (slot 0: gfns 0x0-0x0, slot 1: gfns 0x2-0x2); vm_on places "
        "each region's slot at the next huge-aligned gfn unless given gfns=[...]")


def test_memslot_placement_is_controllable() -> None:
    with registries_restored():
        _register([0, 1], 1)
        res = api.check("v5.4", "two-regions")  # gfn 1 is the second slot's page now
        assert res.exhaustive and res.ok, res.summary()


def test_overlapping_memslots_are_refused() -> None:
    with registries_restored():
        _register([0, 0], 0)
        overlap = r"the slot at gfn 0x0 overlaps slot 0 \(gfns 0x0-0x0\)"
        with pytest.raises(ValueError, match=overlap):
            api.check("v5.4", "two-regions")
