"""devdax-unbind: the 2019 hang. A guest on /dev/dax; vCPUs fault, then VM exit and unbind.

Each vCPU faults ``faults`` times, on its own gfns (vCPU ``i`` on gfns ``i, i + vcpus,
...`` modulo ``pages``), then closes its file. The admin thread closes the VM file
(``kvm_put_kvm``; the last reference runs ``kvm_destroy_vm``) and unbinds the device
(``dev_dax_unbind``: ``kill_dev_dax`` zaps every user mapping through the MMU notifiers,
then ``memunmap_pages`` kills the pgmap, drops the idle references and waits for the rest).
This is the reference scenario of state-space.md.
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
    ThreadBody,
    Variant,
    dev_dax_unbind,
    instance,
    reached,
    teardown_goals,
    vm_exit,
    vm_on_devdax,
    with_vcpus,
)

PROPERTIES = (*ALL_KVM, TEARDOWN_TERMINATES, NOTIFIER_BALANCED)


def build(variant: Variant, sz: dict[str, int]) -> Instance:
    """Host with one 4K-aligned devdax of ``pages``; VM over it; vCPUs and the admin."""
    s, dev = vm_on_devdax(sz["pages"], sz["vcpus"])
    s.host.removed_by("admin")  # dev_dax_unbind -> memunmap_pages runs there

    # operations: after each one the admin holds nothing of it (see vcpu_faults)
    admin: ThreadBody = [lambda: vm_exit(s.kvm), lambda: dev_dax_unbind(dev),
                         lambda: reached(s.progress, GOAL_TEARDOWN)]
    threads = with_vcpus(s, sz, {"admin": admin}, exit_vcpu=True)
    return instance(s, threads, PROPERTIES, teardown_goals(s))


SCENARIO = Scenario(
    name="devdax-unbind",
    summary="guest on /dev/dax: vCPUs fault, then VM exit and device unbind (the 2019 hang)",
    params={"vcpus": 1, "pages": 1, "faults": 1},
    properties=PROPERTIES,
    goals=(GOAL_TEARDOWN, GOAL_OVERLAP),
    build=build,
)
