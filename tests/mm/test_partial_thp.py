"""Issue 11: a THP of which the host maps only some subpages, by PTEs (what a partial
munmap or mprotect leaves after split_huge_pmd): built with add_thp(mapped=...), split
like any THP, and a design that maps huge because the page is compound is caught."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import pfnlab
from pfnlab.api import registries_restored
from pfnlab.mm import (
    MAPPING,
    Host,
    PageTransCompound,
    PageTransCompoundMap,
    get_page,
    pfn_to_page,
    split_huge_page,
)
from pfnlab.mm.vma import TABLE, PteVal


def test_only_the_given_subpages_are_mapped(host: Host) -> None:
    thp = host.add_thp(1, mapped=[1])
    head, tail = pfn_to_page(thp.pfn), pfn_to_page(thp.pfn + 1)
    assert host.mm.pmd(thp.start).val == TABLE
    assert [host.mm.ptes[thp.start + i].val for i in range(2)] == [None, PteVal(tail.pfn)]
    # one PTE mapping: one reference on the head; no PMD mapping
    assert (head.refcount, head.owners, head.compound_mapcount) == (1, ((MAPPING, 1),), -1)
    assert (head.mapcount, tail.mapcount) == (-1, 0)
    assert PageTransCompound(tail) and not PageTransCompoundMap(tail)


def test_a_split_maps_back_only_what_was_mapped(host: Host) -> None:
    thp = host.add_thp(1, mapped=[1])
    head, tail = pfn_to_page(thp.pfn), pfn_to_page(thp.pfn + 1)
    get_page(head, "splitter")  # split_huge_page's caller holds the page
    assert split_huge_page(host.mm, tail)
    assert [host.mm.ptes[thp.start + i].val for i in range(2)] == [None, PteVal(tail.pfn)]
    assert (head.refcount, tail.refcount) == (1, 1)  # the caller's; the tail's mapping
    assert (dict(head.owners), dict(tail.owners)) == ({"splitter": 1}, {MAPPING: 1})
    assert (head.mapcount, tail.mapcount) == (-1, 0)


def test_bad_arguments_say_what_is_valid(host: Host) -> None:
    with pytest.raises(ValueError, match="subpage 2 of a THP region of 2 pages"):
        host.add_thp(1, mapped=[2])
    with pytest.raises(ValueError, match="maps no subpage of huge page 1"):
        host.add_thp(2, mapped=[0, 1])


MODEL = textwrap.dedent('''\
    from pfnlab import Host, instance, scenario, vcpu_faults, vm_on

    PROPS = ["huge-only-thp", "refs-balanced", "no-put-unreferenced"]


    @scenario("fault-on-partial-thp", properties=PROPS)
    def build(variant, sz):
        """a vCPU faults on the one subpage of a THP the host still maps"""
        host = Host()
        thp = host.add_thp(1, name="thp0", mapped=[1])
        s = vm_on(host, [thp], 1)
        return instance(s, {"vcpu0": vcpu_faults(s, 0, [1])}, PROPS)
''')


def test_a_partly_mapped_thp_is_not_mapped_huge(tmp_path: Path) -> None:
    path = tmp_path / "partial.py"
    path.write_text(MODEL)
    examples = Path(__file__).resolve().parents[2] / "examples"
    with registries_restored():
        pfnlab.load_model(examples / "thp_split_huge.py")
        pfnlab.load_model(path)
        good = pfnlab.check("v5.4", "fault-on-partial-thp")
        assert good.ok and good.exhaustive, good.summary()
        bad = pfnlab.check("thp-map-by-page", "fault-on-partial-thp")
        assert bad.violated == ["huge-only-thp"], bad.summary()
