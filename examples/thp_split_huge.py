"""thp-split-huge: a huge SPTE for a THP the host is splitting.

The guest is backed by one anonymous THP, mapped by a PMD. A vCPU faults on a tail page
while the host splits the PMD (``split_huge_pmd``: afterwards the hva is mapped by PTEs,
the page is still compound). The buggy design decides "map it huge" from
``PageTransCompound`` (the page is part of a THP) instead of ``PageTransCompoundMap`` (the
THP is mapped huge here): after the split it installs a huge SPTE the host does not back
with a huge mapping. The fix checks the mapping (the base model, v5.4).
"""

from pfnlab import (
    Host,
    goal_overlap,
    goal_reached,
    instance,
    reached,
    scenario,
    thp_split_thread,
    variant,
    vcpu_faults,
    vm_on,
)
from pfnlab.mm import PageTransCompound, PageTransCompoundMap

PROPS = ["huge-only-thp", "refs-balanced", "no-put-unreferenced", "no-stale-spte"]


@scenario("fault-vs-pmd-split", sizes={"vcpus": 1}, properties=PROPS,
          goals=["split-completes", "fault-overlaps-invalidation"])
def build(variant, sz):
    """vCPUs fault on a THP tail while the host splits its PMD"""
    host = Host()
    thp = host.add_thp(1, name="thp0")
    s = vm_on(host, [thp], sz["vcpus"])

    def split():
        if thp_split_thread(host.mm, thp.start, pmd_only=True):
            reached(s.progress, "split-completes")

    threads = {"split": split}
    for i in range(sz["vcpus"]):
        threads[s.vcpus[i].name] = vcpu_faults(s, i, [1])   # gfn 1: the THP's tail
    return instance(s, threads, PROPS, [goal_reached(s, "split-completes"), goal_overlap(s)])


def compound_map_by_page(page):
    """The bug: 'mapped huge' taken to mean 'part of a THP'."""
    return PageTransCompound(page)


variant("thp-map-by-page", parent="v5.4",
        overrides={"PageTransCompoundMap": compound_map_by_page},
        summary="maps a THP huge because the page is compound, whatever the host maps")
variant("thp-map-by-mapping", parent="thp-map-by-page",
        overrides={"PageTransCompoundMap": PageTransCompoundMap.base},
        summary="maps huge only what the host maps huge (PageTransCompoundMap)")
