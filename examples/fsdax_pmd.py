"""fsdax-pmd: two fsdax files, one mapped by a huge PMD, one by PTEs; KVM asks the page.

fsdax pages are order-0 ZONE_DEVICE pages: never compound, so nothing in a struct page
says whether the host maps it by a PMD (``vmf_insert_pfn_pmd``,
``Host.add_fsdax(align=2, huge=True)``) or by PTEs (the same 2M-aligned file under
MADV_NOHUGEPAGE, ``Host.add_fsdax(align=2)``). The buggy design picks the level from the
page (a ZONE_DEVICE page whose pgmap covers its whole 2M range is "huge", kept here as
``fsdax-level-by-page``) and installs a huge SPTE over the file the host maps 4K. The fix
(``fsdax-level-by-host``) is v5.6's ``host_pfn_mapping_level`` ("KVM: x86/mmu: Use huge
pages for DAX-backed files"): the level of the host's page-table entry, which maps the
PMD-mapped file huge and the other 4K.
"""

from pfnlab import (
    Check,
    Ghost,
    Host,
    Shared,
    instance,
    mm,
    scenario,
    variant,
    vcpu_exit,
    vcpu_fault,
    vm_exit,
    vm_on,
)
from pfnlab.kvm import PT_DIRECTORY_LEVEL, Spte, host_pfn_mapping_level, kvm_is_zone_device_pfn

PROPS = ["huge-only-thp", "refs-balanced", "no-put-unreferenced"]


class Mapped(Shared):
    """Whether the first fault left a huge SPTE over the PMD-mapped file (ghost: a goal)."""

    huge = Ghost(False)


@scenario("fault-on-fsdax-pmd-and-pte", sizes={"vcpus": 1}, properties=PROPS,
          goals=["pmd-file-mapped-huge"])
def build(variant, sz):
    """a vCPU faults on a PMD-mapped fsdax file and on a PTE-mapped one"""
    host = Host()
    big = host.add_fsdax(2, align=2, huge=True, name="pmem-pmd")
    small = host.add_fsdax(2, align=2, name="pmem-pte")
    s = vm_on(host, [big, small], sz["vcpus"])
    out = Mapped("fsdax")

    def vcpu0():
        vcpu_fault(s.vcpus[0], 0)
        out.huge = Spte.spte.unobserved(s.kvm.spte_of(PT_DIRECTORY_LEVEL, 0)) is not None
        vcpu_fault(s.vcpus[0], 2)
        vcpu_exit(s.vcpus[0])

    goals = [Check("pmd-file-mapped-huge", lambda: out.huge, stable=True)]
    return instance(s, {"vcpu0": vcpu0, "admin": lambda: vm_exit(s.kvm)}, PROPS, goals)


def level_by_page(vcpu, slot, gfn, pfn):
    """The bug: a ZONE_DEVICE page is "huge" when its pgmap covers its whole 2M range."""
    if kvm_is_zone_device_pfn(pfn):
        head = pfn - pfn % vcpu.kvm.hpage_pages
        pgmap = mm.pfn_to_page(pfn).pgmap
        if pgmap.covers(head) and pgmap.covers(head + vcpu.kvm.hpage_pages - 1):
            return PT_DIRECTORY_LEVEL
    return host_pfn_mapping_level.base(vcpu, slot, gfn, pfn)


def level_by_host(vcpu, slot, gfn, pfn):
    """The fix: the level of the host page-table entry (v5.6's host walk)."""
    return host_pfn_mapping_level.base(vcpu, slot, gfn, pfn)


variant("fsdax-level-by-page", parent="v5.6",
        overrides={"host_pfn_mapping_level": level_by_page},
        summary="maps a ZONE_DEVICE page huge when its pgmap covers the 2M around it")
variant("fsdax-level-by-host", parent="fsdax-level-by-page",
        overrides={"host_pfn_mapping_level": level_by_host},
        summary="maps huge only where the host's page tables map the hva huge")
