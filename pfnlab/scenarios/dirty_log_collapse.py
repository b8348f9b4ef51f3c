"""dirty-log-collapse: dirty logging turned off while the device under the guest is unbound.

The memslot over a devdax device starts with dirty logging on (4K SPTEs only). vCPUs fault;
the ``dirtylog`` thread publishes the slot without KVM_MEM_LOG_DIRTY_PAGES and runs
``kvm_mmu_zap_collapsible_sptes`` (under mmu_lock, holding no page reference: it classifies
the pfn of each existing SPTE, the path a78986aae9b2 guarded with kvm_is_zone_device_pfn);
the admin thread unbinds the device. The "SPTE present => device alive" chain of Paolo's
argument is what keeps the classification safe.
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
    dirty_log_disable,
    instance,
    reached,
    teardown_goals,
    vm_on_devdax,
    with_vcpus,
)

PROPERTIES = (*ALL_KVM, TEARDOWN_TERMINATES, NOTIFIER_BALANCED)


def build(variant: Variant, sz: dict[str, int]) -> Instance:
    """devdax of ``pages``; slot with dirty logging; vCPUs, dirty-log disable, unbind."""
    s, dev = vm_on_devdax(sz["pages"], sz["vcpus"], dirty_logging=True)
    s.host.removed_by("admin")  # dev_dax_unbind -> memunmap_pages runs there
    kvm = s.kvm

    def admin() -> None:
        dev_dax_unbind(dev)
        reached(s.progress, GOAL_TEARDOWN)

    def dirtylog() -> None:
        dirty_log_disable(kvm, 0)

    threads = with_vcpus(s, sz, {"admin": admin, "dirtylog": dirtylog})
    return instance(s, threads, PROPERTIES, teardown_goals(s))


SCENARIO = Scenario(
    name="dirty-log-collapse",
    summary="dirty logging off (kvm_mmu_zap_collapsible_sptes) while the devdax is unbound",
    params={"vcpus": 1, "pages": 1, "faults": 1},
    properties=PROPERTIES,
    goals=(GOAL_TEARDOWN, GOAL_OVERLAP),
    build=build,
)
