"""two-vcpu-same-gfn: two vCPUs fault on the same gfn of a devdax guest during unbind.

Both faults gup the same device page and race to install the same SPTE (``mmu_set_spte``
finds it present with the same pfn the second time); each must put exactly its own
reference, including on the retry path, while the admin thread kills the device and zaps
its mappings (``kill_dev_dax``; ``unbind=2`` runs the whole unbind with ``memunmap_pages``,
about 100x more states).
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
    kill_dev_dax,
    reached,
    teardown_goals,
    vm_on_devdax,
    with_vcpus,
)

PROPERTIES = (*ALL_KVM, TEARDOWN_TERMINATES, NOTIFIER_BALANCED)


def build(variant: Variant, sz: dict[str, int]) -> Instance:
    """devdax of ``pages``; ``vcpus`` vCPUs all faulting on gfn 0 (then gfns 1..); unbind."""
    s, dev = vm_on_devdax(sz["pages"], sz["vcpus"])
    s.host.removed_by("admin")  # dev_dax_unbind -> memunmap_pages runs there

    def admin() -> None:
        if sz["unbind"] > 1:
            dev_dax_unbind(dev)
        else:  # the zap half of the unbind only: kill_dax + unmap_mapping_range
            kill_dev_dax(dev)
        reached(s.progress, GOAL_TEARDOWN)

    gfns = [k % sz["pages"] for k in range(sz["faults"])]  # the same gfns for every vCPU
    threads = with_vcpus(s, sz, {"admin": admin}, gfns_of=lambda _i: gfns)
    return instance(s, threads, PROPERTIES, teardown_goals(s))


SCENARIO = Scenario(
    name="two-vcpu-same-gfn",
    summary="two vCPUs fault on the same devdax gfn and race the install while it is unbound",
    params={"vcpus": 2, "pages": 1, "faults": 1, "unbind": 1},
    properties=PROPERTIES,
    goals=(GOAL_TEARDOWN, GOAL_OVERLAP),
    build=build,
)
