"""vcpu-map-vs-unbind: ``kvm_vcpu_map`` holds a device page across the device's unbind.

Each vCPU maps its gfn with ``kvm_vcpu_map`` (the reference from ``gfn_to_pfn_memslot`` is
held from map to unmap, kernel-semantics.md 1.7; MMU notifiers do not revalidate it),
touches the mapped memory ``faults`` times, and unmaps. The admin thread unbinds the devdax
meanwhile. Dan's early put would drop the pin while mapped (a78986aae9b2 message: it
"breaks kvm_vcpu_{un}map()").
"""

from __future__ import annotations

from collections.abc import Callable

from pfnlab import (
    ALL_KVM,
    GOAL_MAP_OVERLAP,
    GOAL_TEARDOWN,
    NO_SPTE_TO_FREED,
    PIN_HELD,
    TEARDOWN_TERMINATES,
    Instance,
    Scenario,
    Setup,
    ThreadBody,
    Variant,
    dev_dax_unbind,
    ghost,
    goal_map_during_invalidation,
    goal_reached,
    instance,
    kvm_vcpu_map,
    kvm_vcpu_unmap,
    map_owner,
    reached,
    touch_mapping,
    vm_on_devdax,
)

# pin-held first: a map without its reference is reported as that, not as what follows
PROPERTIES = (PIN_HELD, *ALL_KVM, TEARDOWN_TERMINATES)
assert NO_SPTE_TO_FREED in PROPERTIES  # a map to a freed page is I5 too


def mapper(s: Setup, i: int, gfn: int, touches: int) -> Callable[[], None]:
    """Thread body: kvm_vcpu_map, ``touches`` accesses, kvm_vcpu_unmap (dirty)."""
    vcpu = s.vcpus[i]
    owner = map_owner(vcpu)

    def run() -> None:
        with ghost.operation(owner):
            hmap = kvm_vcpu_map(vcpu, gfn)
            if hmap is not None:
                for _ in range(touches):
                    touch_mapping(hmap)
                kvm_vcpu_unmap(vcpu, hmap, True)

    return run


def build(variant: Variant, sz: dict[str, int]) -> Instance:
    """devdax of ``pages``; VM over it; vCPUs mapping their gfn; the unbind."""
    s, dev = vm_on_devdax(sz["pages"], sz["vcpus"])
    s.host.removed_by("admin")  # dev_dax_unbind -> memunmap_pages runs there

    def admin() -> None:
        dev_dax_unbind(dev)
        reached(s.progress, GOAL_TEARDOWN)

    threads: dict[str, ThreadBody] = {"admin": admin}
    for i in range(sz["vcpus"]):
        threads[s.vcpus[i].name] = mapper(s, i, i % sz["pages"], sz["faults"])
    goals = [goal_reached(s, GOAL_TEARDOWN), goal_map_during_invalidation(s)]
    return instance(s, threads, PROPERTIES, goals)


SCENARIO = Scenario(
    name="vcpu-map-vs-unbind",
    summary="kvm_vcpu_map holds a devdax page (map, touch, unmap) across device unbind",
    params={"vcpus": 1, "pages": 1, "faults": 1},
    properties=PROPERTIES,
    goals=(GOAL_TEARDOWN, GOAL_MAP_OVERLAP),
    build=build,
)
