"""fsdax-truncate: a guest on an fsdax (pmem) file while the file is truncated.

vCPUs fault on their own gfns (a leaked reference keeps an fsdax page above its free-at-1
baseline). The truncate thread breaks the DAX layouts first (XFS
``xfs_break_dax_layouts``: ``dax_layout_busy_page`` unmaps the file, firing the MMU
notifiers, then waits until each page's refcount falls back to 1). A leaked KVM reference
blocks the truncate forever (kernel-semantics.md 2.7).
"""

from __future__ import annotations

from pfnlab import (
    ALL_KVM,
    GOAL_OVERLAP,
    GOAL_TEARDOWN,
    NOTIFIER_BALANCED,
    TEARDOWN_TERMINATES,
    Host,
    Instance,
    Scenario,
    Variant,
    fsdax_break_layouts,
    instance,
    reached,
    teardown_goals,
    vm_on,
    with_vcpus,
)

PROPERTIES = (*ALL_KVM, TEARDOWN_TERMINATES, NOTIFIER_BALANCED)


def build(variant: Variant, sz: dict[str, int]) -> Instance:
    """fsdax file of ``pages`` pages, VM over it, vCPUs, and the truncating thread."""
    host = Host()
    pmem = host.add_fsdax(sz["pages"], name="pmem0")
    s = vm_on(host, [pmem], sz["vcpus"])
    mapping = pmem.mapping
    assert mapping is not None

    def truncate() -> None:
        fsdax_break_layouts(mapping)
        reached(s.progress, GOAL_TEARDOWN)

    threads = with_vcpus(s, sz, {"truncate": truncate})
    return instance(s, threads, PROPERTIES, teardown_goals(s))


SCENARIO = Scenario(
    name="fsdax-truncate",
    summary="guest on an fsdax file while it is truncated: the layout-break wait",
    params={"vcpus": 1, "pages": 1, "faults": 1},
    properties=PROPERTIES,
    goals=(GOAL_TEARDOWN, GOAL_OVERLAP),
    build=build,
)
