"""section-usage: a pfn walker reads section metadata that memory hot-remove frees.

``pfn_valid()`` answers from the ``struct mem_section`` of the pfn: ``valid_section()``
(the ``SECTION_HAS_MEM_MAP`` flag), then the pfn's bit in ``ms->usage->subsection_map``.
It takes no reference: a walker (compaction's pfn scanner, KVM's pfn classification) may
ask about any pfn. Meanwhile the device's memory is removed: ``sparse_remove_section``
-> ``section_deactivate`` frees ``ms->usage`` once the section is empty. In v5.3 to v6.7
it does so with ``kfree`` before it clears the flag, and ``pfn_valid`` reads ``usage``
without RCU: a walker that found the section valid reads freed metadata. The fix,
5ec8e8ea8b77 (v6.8, CVE-2023-52489), clears the flag first, frees ``usage`` with
``kfree_rcu`` and reads it inside ``rcu_read_lock()``; a walker that loads the pointer
after it was cleared finds NULL (the NULL check came in v6.10, CVE-2024-41055).
"""

from pfnlab import Check, Ghost, Host, Shared, instance, scenario, variant, vm_on, world
from pfnlab.mm import (
    SECTION_HAS_MEM_MAP,
    __pfn_to_section,
    early_section,
    kfree_rcu,
    pfn_section_valid,
    pfn_valid,
    rcu_callback_thread,
    rcu_read_lock,
    rcu_read_unlock,
    sparse_remove_section,
    subsection_map_index,
    valid_section,
)

PROPERTIES = ["no-metadata-after-teardown"]


class Walk(Shared):
    """Bookkeeping for the goal: a walker found the section valid and is still in
    pfn_valid (ghost fields: no steps)."""

    after_valid = Ghost(False)


@scenario("pfn-walker-vs-hot-remove", properties=PROPERTIES,
          goals=["usage-unpublished-under-a-walker"])
def build(variant, sz):
    """a pfn walker asks pfn_valid() while the device's memory section is removed"""
    host = Host()
    dax = host.add_devdax(1, name="dax0")
    s = vm_on(host, [dax], 1)
    ms = __pfn_to_section(dax.pfn)
    walk = world().extra["walk"] = Walk("walk")

    def walker():
        pfn_valid(dax.pfn)

    def admin():
        sparse_remove_section(dax.pfn, 1)      # what arch_remove_memory runs per section

    overlap = Check("usage-unpublished-under-a-walker",
                    lambda: "ms->usage unpublished while a walker that found the section "
                    "valid is in pfn_valid" if walk.after_valid and ms.usage is None else None)
    return instance(s, {"walker": walker, "admin": admin, "rcu": rcu_callback_thread},
                    PROPERTIES, [overlap])


def pfn_valid_unlocked(pfn):
    """include/linux/mmzone.h v5.4: valid_section, then ms->usage, no lock and no RCU."""
    ms = __pfn_to_section(pfn)
    if not valid_section(ms):
        return False
    walk = world().extra["walk"]
    walk.after_valid = True
    ret = early_section(ms) or pfn_section_valid(ms, pfn)
    walk.after_valid = False
    return ret


def pfn_valid_rcu(pfn):
    """include/linux/mmzone.h v6.10: the same under rcu_read_lock(), NULL usage is 0."""
    ms = __pfn_to_section(pfn)
    if ms is None:
        return False
    rcu_read_lock()
    if not valid_section(ms):
        rcu_read_unlock()
        return False
    walk = world().extra["walk"]
    walk.after_valid = True
    usage = ms.usage                          # READ_ONCE(ms->usage)
    ret = early_section(ms) or (
        usage is not None and bool(usage.subsection_map >> subsection_map_index(ms, pfn) & 1))
    walk.after_valid = False
    rcu_read_unlock()
    return ret


def section_deactivate_rcu(pfn, nr_pages):
    """mm/sparse.c v6.8: clear SECTION_HAS_MEM_MAP first, then kfree_rcu(ms->usage) (the
    metadata part: nothing here reads the memmap it also frees)."""
    ms = __pfn_to_section(pfn)
    early = early_section(ms)
    usage = ms.usage
    usage.subsection_map = usage.subsection_map & ~(1 << subsection_map_index(ms, pfn))
    if usage.subsection_map == 0:
        ms.section_mem_map = ms.section_mem_map & ~SECTION_HAS_MEM_MAP
        if not early:
            kfree_rcu(usage, ("no-metadata-after-teardown",
                              f"{ms.name}.usage freed by section_deactivate"))
            ms.usage = None
        ms.section_mem_map = 0


variant("usage-kfree", "v5.4", overrides={"pfn_valid": pfn_valid_unlocked},
        summary="v5.4: section_deactivate kfrees ms->usage; pfn_valid reads it without RCU")
variant("usage-kfree-rcu", "v5.4",
        overrides={"pfn_valid": pfn_valid_rcu, "section_deactivate": section_deactivate_rcu},
        summary="v6.8/v6.10: flag cleared first, kfree_rcu, pfn_valid under rcu_read_lock")
