"""retry-leak: a page fault that forgets its put on the retry path.

A vCPU faults on anonymous guest memory while the host zaps it (MADV_DONTNEED: an
MMU-notifier invalidation). When ``mmu_notifier_retry`` says the invalidation raced with
the fault, the buggy ``tdp_page_fault`` returns RET_PF_RETRY without putting the
reference gup took: every lost race leaks a page reference. The fix puts it on every path
(the base model's ``tdp_page_fault``, v5.4).
"""

from pfnlab import Host, goal_overlap, instance, scenario, variant, vcpu_faults, vm_on
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
    tdp_page_fault,
    transparent_hugepage_adjust,
    try_async_pf,
)
from pfnlab.mm import zap_page_range


@scenario("fault-vs-zap", sizes={"faults": 1},
          properties=["refs-balanced", "no-put-unreferenced", "no-stale-spte",
                      "notifier-balanced"],
          goals=["fault-overlaps-invalidation"])
def build(variant, sz):
    """a vCPU faults on anonymous memory while the host zaps it (MADV_DONTNEED)"""
    host = Host()
    ram = host.add_anon(1, name="ram")
    s = vm_on(host, [ram], 1)

    def zap():
        zap_page_range(ram.vma, ram.start, ram.end)

    threads = {"zap": zap, "vcpu0": vcpu_faults(s, 0, [0] * sz["faults"])}
    return instance(s, threads, ["refs-balanced", "no-put-unreferenced", "no-stale-spte",
                                 "notifier-balanced"], [goal_overlap(s)])


def tdp_page_fault_leaky(vcpu, gfn, write):
    """tdp_page_fault with an early return on the retry path that skips the put."""
    kvm = vcpu.kvm
    slot = gfn_to_memslot(kvm.memslots, gfn)
    level, force_pt_level = mapping_level(vcpu, slot, gfn)
    if not force_pt_level:
        gfn &= ~(kvm.pages_per_hpage(level) - 1)
    mmu_seq = kvm.mmu_notifier_seq
    pfn, map_writable = try_async_pf(vcpu, slot, gfn, write)
    if is_error_pfn(pfn):
        return RET_PF_ERROR
    if slot is None:
        return RET_PF_EMULATE
    kvm.mmu_lock.acquire()
    if mmu_notifier_retry(kvm, mmu_seq):
        kvm.mmu_lock.release()
        return RET_PF_RETRY                # the bug: pfn's reference is never put
    if not force_pt_level:
        pfn, level = transparent_hugepage_adjust(vcpu, slot, gfn, pfn, level)
    r = __direct_map(vcpu, slot, gfn, write, map_writable, level, pfn)
    kvm.mmu_lock.release()
    kvm_release_pfn_clean(pfn)
    return r


variant("retry-leak", parent="v5.4", overrides={"tdp_page_fault": tdp_page_fault_leaky},
        summary="tdp_page_fault returns RET_PF_RETRY without putting the gup reference")
variant("retry-leak-fixed", parent="retry-leak",
        overrides={"tdp_page_fault": tdp_page_fault.base},
        summary="the put on every path (the v5.4 tdp_page_fault)")
