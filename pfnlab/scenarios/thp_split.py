"""thp-split: a THP-backed guest while the host splits the huge page.

The guest memory is ``huge`` anonymous THPs, each PMD-mapped (2 subpages in the model).
vCPUs fault on tail gfns (v5.4: ``transparent_hugepage_adjust`` maps the THP huge and shifts
the reference from the tail to the head). The split thread splits the first THP
(``split_huge_pmd``, notifier-bracketed; with ``split_depth=2`` also ``split_huge_page``,
which fails with -EBUSY while anybody, e.g. a KVM gup, holds an extra reference). Depth 2
is ~100x larger (about 10 s per variant).
"""

from __future__ import annotations

from pfnlab import (
    ALL_KVM,
    GOAL_OVERLAP,
    NOTIFIER_BALANCED,
    Host,
    Instance,
    Scenario,
    ThreadBody,
    Variant,
    goal_overlap,
    goal_reached,
    instance,
    reached,
    thp_split_thread,
    vcpu_faults,
    vm_on,
)

PROPERTIES = (*ALL_KVM, NOTIFIER_BALANCED)
GOAL_SPLIT = "split-completes"


def build(variant: Variant, sz: dict[str, int]) -> Instance:
    """``huge`` THPs, VM over them, vCPUs faulting on tails, and the splitter."""
    host = Host()
    thp = host.add_thp(sz["huge"], name="thp0")
    s = vm_on(host, [thp], sz["vcpus"])
    n = host.pmd_pages
    tails = [g for g in range(thp.npages) if g % n]

    pmd_only = sz["split_depth"] < 2  # 1: split_huge_pmd; 2: also split_huge_page

    def split() -> None:
        if thp_split_thread(host.mm, thp.start, pmd_only=pmd_only):
            reached(s.progress, GOAL_SPLIT)

    threads: dict[str, ThreadBody] = {"split": split}
    for i in range(sz["vcpus"]):
        gfns = [tails[(i + k * sz["vcpus"]) % len(tails)] for k in range(sz["faults"])]
        threads[s.vcpus[i].name] = vcpu_faults(s, i, gfns)
    return instance(s, threads, PROPERTIES, [goal_reached(s, GOAL_SPLIT), goal_overlap(s)])


SCENARIO = Scenario(
    name="thp-split",
    summary="THP-backed guest: vCPUs fault on THP tails while the host splits the huge page",
    params={"vcpus": 1, "huge": 1, "faults": 1, "split_depth": 1},
    properties=PROPERTIES,
    goals=(GOAL_SPLIT, GOAL_OVERLAP),
    build=build,
)
