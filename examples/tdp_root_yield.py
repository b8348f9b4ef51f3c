"""tdp-root-yield: a TDP MMU walk yields mmu_lock while the root it walks is freed.

With the TDP MMU (v5.10 on) each vCPU maps the guest through a root page table, a
``struct kvm_mmu_page`` counted in ``tdp_mmu_root_count``; the vCPU's ``kvm_mmu_unload``
puts its reference and the last put frees the root. The MMU notifier's unmap zaps every
root's SPTEs of the range and, from e1eed5847b09 (v5.13), may yield ``mmu_lock`` while it
walks one (``tdp_mmu_iter_cond_resched``); after the yield the walk restarts from the root.
v5.13-v5.15 walked the roots with ``for_each_tdp_mmu_root``, which takes no reference: the
vCPU can unload and free the root during the yield, and the walk then restarts on freed
memory. 7533377215b6 (v5.16) walks them with the iterator that holds a reference on each
root across its body (``tdp_mmu_next_root``), and the walker's own put frees the root.

The model: a vCPU loads its root, faults on gfn 0 (installing the SPTE in its root) and
unloads; the host zaps both pages of the guest (MADV_DONTNEED) meanwhile. Both designs
run the fault and the notifier's unmap through the TDP MMU (``kvm_tdp_mmu_map``,
``kvm_unmap_gfn_range``); the buggy one overrides ``kvm_tdp_mmu_unmap_gfn_range`` with
the v5.13 loop. Nothing about the bug is coded here: the engine reports the walk's touch
of the freed root, under the built-in ``no-root-after-free``.
"""

from pfnlab import Check, Ghost, Host, Shared, instance, scenario, variant, vcpu_fault, vm_on, world
from pfnlab.kvm import (
    KvmGfnRange,
    for_each_tdp_mmu_root,
    kvm_mmu_init_tdp_mmu,
    kvm_mmu_load,
    kvm_mmu_unload,
    kvm_tdp_mmu_map,
    kvm_unmap_gfn_range,
    zap_gfn_range,
)
from pfnlab.mm import zap_page_range

PROPERTIES = ["no-root-after-free", "refs-balanced", "no-stale-spte", "no-spte-to-freed",
              "notifier-balanced"]


class Witness(Shared):
    """Bookkeeping for the goal: the vCPU unloaded its root while an unmap was walking."""

    unmapping = Ghost(False)
    unload_during_unmap = Ghost(False)


def direct_map_tdp(vcpu, slot, gfn, write, map_writable, level, pfn):
    """direct_page_fault v5.10+: the fault installs its SPTE in the vCPU's TDP MMU root."""
    return kvm_tdp_mmu_map(vcpu, slot, gfn, write, map_writable, level, pfn)


def unmap_hva_range_tdp(kvm, start, end):
    """kvm_mmu_notifier_invalidate_range_start v5.13+: each slot's gfns in [start, end)
    through kvm_unmap_gfn_range, which may yield (a blockable invalidation)."""
    w = world().extra["witness"]
    w.unmapping = True
    flush = False
    for slot in kvm.memslots:
        gfns = slot.hva_range_to_gfns(start, end)
        if gfns:
            flush |= kvm_unmap_gfn_range(kvm, KvmGfnRange(slot, gfns.start, gfns.stop, True))
    w.unmapping = False
    return flush


def mmu_unload_witnessed(vcpu):
    """kvm_mmu_unload, noting whether an unmap was walking the roots meanwhile."""
    w = world().extra["witness"]
    if w.unmapping:
        w.unload_during_unmap = True
    kvm_mmu_unload.base(vcpu)


def tdp_mmu_unmap_gfn_range_v5_13(kvm, range, flush):
    """kvm_tdp_mmu_unmap_gfn_range v5.13-v5.15: for_each_tdp_mmu_root holds no reference
    on the root while zap_gfn_range yields (range.may_block)."""
    for root in for_each_tdp_mmu_root(kvm):
        flush = zap_gfn_range(kvm, root, range.start, range.end, range.may_block, flush)
    return flush


@scenario("tdp-unmap-vs-unload", properties=PROPERTIES, goals=["unload-during-unmap"])
def build(variant, sz):
    """a vCPU faults through its TDP MMU root and unloads it while the host zaps the guest"""
    host = Host()
    ram = host.add_anon(2, name="ram")
    s = vm_on(host, [ram], 1)
    kvm_mmu_init_tdp_mmu(s.kvm, s.vcpus)  # one root page, allocated by kvm_mmu_load
    w = Witness("witness")
    world().extra["witness"] = w
    vcpu = s.vcpus[0]

    def zap():
        zap_page_range(ram.vma, ram.start, ram.end)

    vcpu0 = [lambda: kvm_mmu_load(vcpu), lambda: vcpu_fault(vcpu, 0, True),
             lambda: kvm_mmu_unload(vcpu)]
    goal = Check("unload-during-unmap", lambda: w.unload_during_unmap, stable=True)
    return instance(s, {"zap": zap, "vcpu0": vcpu0}, PROPERTIES, [goal])


TDP_MMU = {"__direct_map": direct_map_tdp, "kvm_unmap_hva_range": unmap_hva_range_tdp,
           "kvm_mmu_unload": mmu_unload_witnessed}

variant("tdp-unmap-v5.13", "v5.4",
        {**TDP_MMU, "kvm_tdp_mmu_unmap_gfn_range": tdp_mmu_unmap_gfn_range_v5_13},
        summary="the notifier's TDP MMU unmap yields with no reference on the root")
variant("tdp-unmap-v5.16", "v5.4", TDP_MMU,
        summary="the unmap holds a reference on each root across the yield (7533377215b6)")
