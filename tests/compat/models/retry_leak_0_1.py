"""A model file as pfnlab 0.1 users wrote it: the retry-path leak, recording references in
the ledger by hand (ghost.ref_taken / ref_dropping / ad_update, no-ops that warn now)."""

from pfnlab import Host, ghost, goal_overlap, instance, scenario, variant, vcpu_faults, vm_on
from pfnlab.kvm import (
    RET_PF_EMULATE,
    RET_PF_ERROR,
    RET_PF_RETRY,
    __direct_map,
    gfn_to_memslot,
    is_error_pfn,
    kvm_release_pfn_clean,
    mapping_level,
    mmu_notifier_retry,
    transparent_hugepage_adjust,
    try_async_pf,
)
from pfnlab.mm import pfn_to_page, zap_page_range


@scenario("compat-fault-vs-zap", sizes={"faults": 1},
          properties=["refs-balanced", "no-put-unreferenced"],
          goals=["fault-overlaps-invalidation"])
def build(variant, sz):
    """a vCPU faults on anonymous memory while the host zaps it"""
    host = Host()
    ram = host.add_anon(1, name="ram")
    s = vm_on(host, [ram], 1)

    def zap():
        zap_page_range(ram.vma, ram.start, ram.end)

    threads = {"zap": zap, "vcpu0": vcpu_faults(s, 0, [0] * sz["faults"])}
    return instance(s, threads, ["refs-balanced", "no-put-unreferenced"], [goal_overlap(s)])


def tdp_page_fault_0_1(vcpu, gfn, write, owner, leak=True):
    """tdp_page_fault as a 0.1 model wrote it, the references recorded by hand."""
    kvm = vcpu.kvm
    slot = gfn_to_memslot(kvm.memslots, gfn)
    level, force_pt_level = mapping_level(vcpu, slot, gfn)
    if not force_pt_level:
        gfn &= ~(kvm.pages_per_hpage(level) - 1)
    mmu_seq = kvm.mmu_notifier_seq
    pfn, map_writable = try_async_pf(vcpu, slot, gfn, write, owner)
    if is_error_pfn(pfn):
        return RET_PF_ERROR
    if slot is None:
        return RET_PF_EMULATE
    ghost.ref_taken(pfn_to_page(pfn), owner)
    kvm.mmu_lock.acquire()
    if mmu_notifier_retry(kvm, mmu_seq):
        kvm.mmu_lock.release()
        if not leak:
            ghost.ref_dropping(pfn_to_page(pfn), owner, "retry")
            kvm_release_pfn_clean(pfn, owner)
        return RET_PF_RETRY
    if not force_pt_level:
        pfn, level = transparent_hugepage_adjust(vcpu, slot, gfn, pfn, level, owner)
    r = __direct_map(vcpu, slot, gfn, write, map_writable, level, pfn)
    kvm.mmu_lock.release()
    ghost.ref_dropping(pfn_to_page(pfn), owner, "done")
    kvm_release_pfn_clean(pfn, owner)
    return r


def tdp_page_fault_0_1_fixed(vcpu, gfn, write, owner):
    """The same with the put on the retry path."""
    return tdp_page_fault_0_1(vcpu, gfn, write, owner, leak=False)


variant("compat-retry-leak", parent="v5.4", overrides={"tdp_page_fault": tdp_page_fault_0_1},
        summary="0.1-style model: the retry path skips the put")
variant("compat-retry-leak-fixed", parent="v5.4",
        overrides={"tdp_page_fault": tdp_page_fault_0_1_fixed},
        summary="0.1-style model: the put on every path")
