"""remapped-vs-unbind: KVM reads a pfn it has not pinned while the device is torn down.

Paolo's question (<1cf71906-ba99-e637-650f-fc08ac4f3d5f@redhat.com>): "What is the race
exactly?" Device memory is mapped by a driver with ``remap_pfn_range`` into a
VM_IO|VM_PFNMAP vma (special PTEs): gup refuses it, so the fault takes
``hva_to_pfn_remapped``: ``follow_pfn`` (no reference), then ``kvm_get_pfn`` classifies the
pfn (``kvm_is_reserved_pfn`` / ``kvm_is_zone_device_pfn`` read ``struct page``) and takes
a reference. The admin thread unbinds the device meanwhile (zap through the notifiers, SPTE
zap paths with ``mmu_spte_clear_track_bits``, then ``memunmap_pages`` removing the memmap).
A finding is the interleaving Paolo asked for; an exhaustive pass means the modelled
locking (notifier seq/count, mmu_lock, the devdax unbind order) closes every window.
"""

from __future__ import annotations

from pfnlab import (
    ALL_KVM,
    GOAL_OVERLAP,
    GOAL_TEARDOWN,
    NOTIFIER_BALANCED,
    TEARDOWN_TERMINATES,
    Instance,
    Scenario,
    Variant,
    dev_dax_unbind,
    instance,
    reached,
    teardown_goals,
    vm_on_devdax,
    with_vcpus,
)

PROPERTIES = (*ALL_KVM, TEARDOWN_TERMINATES, NOTIFIER_BALANCED)


def build(variant: Variant, sz: dict[str, int]) -> Instance:
    """Device pages remap_pfn_range'd into the VMM; VM over them; vCPUs and the unbind."""
    s, dev = vm_on_devdax(sz["pages"], sz["vcpus"], remapped=True)
    s.host.removed_by("admin")  # dev_dax_unbind -> memunmap_pages runs there

    def admin() -> None:
        dev_dax_unbind(dev)
        reached(s.progress, GOAL_TEARDOWN)

    threads = with_vcpus(s, sz, {"admin": admin})
    return instance(s, threads, PROPERTIES, teardown_goals(s))


SCENARIO = Scenario(
    name="remapped-vs-unbind",
    summary="hva_to_pfn_remapped on VM_PFNMAP device memory (no pin) while the device is "
    "torn down: Paolo's 'what is the race exactly?'",
    params={"vcpus": 1, "pages": 1, "faults": 1},
    properties=PROPERTIES,
    goals=(GOAL_TEARDOWN, GOAL_OVERLAP),
    build=build,
)
