"""partial-compound: a driver maps only part of a compound page; KVM maps all of it huge.

A driver allocates an order-1 compound page (``__GFP_COMP``) and ``remap_pfn_range``s only
its head into the VMM (``Host.add_compound(order=1, mapped=1)``: the tail's hva has no
PTE). The page still says ``PageTransCompoundMap``, which is what v5.4's
``transparent_hugepage_adjust`` asks: the buggy design (v5.4's classification, kept here
as ``compound-huge-by-page``) installs a huge SPTE over both pages, giving the guest the
tail the host never mapped. The fix (``compound-huge-by-host``) asks the host's page
tables how the hva is mapped, as v5.6's ``kvm_mmu_hugepage_adjust`` does
(``host_pfn_mapping_level``), and maps 4K.
"""

from pfnlab import Host, instance, scenario, variant, vcpu_exit, vcpu_fault, vm_exit, vm_on
from pfnlab.kvm import PT_DIRECTORY_LEVEL, host_pfn_mapping_level, transparent_hugepage_adjust

PROPS = ["huge-only-thp", "refs-balanced", "no-put-unreferenced"]


@scenario("fault-on-partly-mapped-compound", sizes={"vcpus": 1}, properties=PROPS)
def build(variant, sz):
    """a vCPU faults on the mapped head of a compound page whose tail the driver left out"""
    host = Host()
    comp = host.add_compound(1, order=1, mapped=1, name="drv")
    s = vm_on(host, [comp], sz["vcpus"])

    def vcpu0():
        vcpu_fault(s.vcpus[0], 0)
        vcpu_exit(s.vcpus[0])

    return instance(s, {"vcpu0": vcpu0, "admin": lambda: vm_exit(s.kvm)}, PROPS)


def thp_adjust_by_host_level(vcpu, slot, gfn, pfn, level):
    """The fix: map huge only where the host maps the hva huge (v5.6's host walk)."""
    if host_pfn_mapping_level(vcpu, slot, gfn, pfn) < PT_DIRECTORY_LEVEL:
        return (pfn, level)
    return transparent_hugepage_adjust.base(vcpu, slot, gfn, pfn, level)


variant("compound-huge-by-page", parent="v5.4",
        summary="maps huge whatever says PageTransCompoundMap (v5.4's classification)")
variant("compound-huge-by-host", parent="compound-huge-by-page",
        overrides={"transparent_hugepage_adjust": thp_adjust_by_host_level},
        summary="maps huge only where the host's page tables map the hva huge")
