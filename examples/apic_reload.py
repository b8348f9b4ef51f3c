"""apic-vs-migrate: the VMCS's APIC-access address goes stale while its page migrates.

KVM keeps the host address of the APIC-access page in every VMCS without holding a page
reference ("the MMU notifier will call us again if it is migrated"): an invalidation of
that page's hva requests KVM_REQ_APIC_PAGE_RELOAD, and before entering the guest the vCPU
looks the page up again and writes the new address (``kvm_vcpu_reload_apic_access_page``).
From b1394e745b94 (v4.15) the request was made from ``invalidate_range_start``: *before*
the host changed the PTE. A vCPU that reloads in that window looks up the old page, and no
later request comes; once the migration is over, the VMCS points to a page the host no
longer maps there. e649b3f0188f ("KVM: x86: Fix APIC page invalidation race", v5.8)
requests the reload from ``->invalidate_range``, which runs after the PTE changed.

The VMCS field is a :class:`~pfnlab.PfnCache`, so the built-in ``secondary-coherent``
(I12) checks it: no property to write.
"""

from pfnlab import (
    Check,
    Ghost,
    Host,
    PfnCache,
    Shared,
    instance,
    operation,
    scenario,
    variant,
    vm_on,
)
from pfnlab.kvm import gfn_to_pfn_cache_invalidate_start, pfn_cache_lookup, pfn_cache_publish
from pfnlab.mm import migrate_page_thread

APIC_GFN = 0  # the model's APIC_DEFAULT_PHYS_BASE >> PAGE_SHIFT: gfn 0 of the only memslot


class Outcome(Shared):
    """What the migration returned, and whether a reload ran (ghost: for the goals)."""

    rc = Ghost(None)
    reloaded = Ghost(False)


def kvm_vcpu_reload_apic_access_page(vcpu, apic):
    """arch/x86/kvm/x86.c v5.4: gfn_to_page, write APIC_ACCESS_ADDR, put the page."""
    with operation(f"{vcpu.name}:apic"):  # the lookup's gup reference is put before the end
        pfn_cache_publish(apic, pfn_cache_lookup(apic))


def vcpu_enter_guest(vcpu, apic, out):
    """arch/x86/kvm/x86.c: a pending KVM_REQ_APIC_PAGE_RELOAD is served before entry."""
    if not apic.valid:
        kvm_vcpu_reload_apic_access_page(vcpu, apic)
        out.reloaded = True


@scenario("apic-vs-migrate", sizes={"entries": 2},
          properties=["secondary-coherent", "refs-balanced"], goals=["migrated", "reloaded"])
def build(variant, sz):
    """the host migrates the APIC-access page while a vCPU enters the guest"""
    host = Host()
    ram = host.add_anon(1, name="apic")
    pool = host.add_free(1)
    s = vm_on(host, [ram], 1)
    apic = PfnCache(s.kvm, "vmcs.apic_access_addr", APIC_GFN)
    apic.pfn, apic.valid = ram.pfn, True  # set-up: loaded when the vCPU was created
    vcpu = s.vcpus[0]
    out = Outcome("migration")

    def migrate():
        out.rc = migrate_page_thread(host.mm, ram.start, pool)

    def vcpu0():
        for _ in range(sz["entries"]):
            vcpu_enter_guest(vcpu, apic, out)

    return instance(s, {"migrate": migrate, "vcpu0": vcpu0},
                    ["secondary-coherent", "refs-balanced"],
                    [Check("migrated", lambda: out.rc == 0, stable=True),
                     Check("reloaded", lambda: out.reloaded, stable=True)])


def apic_page_reload_request(kvm, start, end):
    """arch/x86/kvm/x86.c kvm_arch_mmu_notifier_invalidate_range: request
    KVM_REQ_APIC_PAGE_RELOAD when the APIC-access page's hva is in [start, end)."""
    gfn_to_pfn_cache_invalidate_start(kvm, start, end)


def no_request(kvm, start, end):
    """v5.8: invalidate_range_start no longer calls the arch hook (it moved)."""


def kvm_mmu_notifier_invalidate_range_v58(kvm, start, end):
    """virt/kvm/kvm_main.c v5.8 (e649b3f0188f): ->invalidate_range, after the PTE
    changed, calls the arch hook that requests the reload."""
    apic_page_reload_request(kvm, start, end)


variant("apic-reload-v4.15", "v5.4",
        {"kvm_arch_mmu_notifier_invalidate_range": apic_page_reload_request},
        summary="b1394e745b94: the reload is requested from invalidate_range_start")
variant("apic-reload-v5.8", "apic-reload-v4.15",
        {"kvm_arch_mmu_notifier_invalidate_range": no_request,
         "kvm_mmu_notifier_invalidate_range": kvm_mmu_notifier_invalidate_range_v58},
        summary="e649b3f0188f: the reload is requested from ->invalidate_range")
