"""Sparse memory sections: the flags and ``ms->usage`` of ``struct mem_section``
(include/linux/mmzone.h, mm/sparse.c), the metadata lockless pfn walkers read.

The data is :class:`~pfnlab.mm.memmap.Section` (``section_mem_map``, ``usage``) and
:class:`~pfnlab.mm.memmap.MemSectionUsage` (``subsection_map``); the functions here are
the kernel's, as of v5.4 unless a docstring says otherwise. The history of the race
between ``pfn_valid()`` and ``section_deactivate()`` that frees ``ms->usage``:

- v5.3 (sub-section hotplug) to v6.7: ``section_deactivate`` frees ``ms->usage`` with
  ``kfree`` and then clears the flags (v5.4: the whole ``section_mem_map``; from v5.7,
  "mm/sparse: fix kernel crash with pfn_section_valid check", ``&= ~SECTION_HAS_MEM_MAP``);
  ``pfn_valid`` reads ``valid_section`` and then ``ms->usage->subsection_map`` with no
  lock and no RCU. A walker that saw the section valid reads freed ``usage`` (or NULL).
- v6.8 (5ec8e8ea8b77, CVE-2023-52489): the flag is cleared first, ``usage`` is freed
  with ``kfree_rcu`` and ``pfn_valid`` runs under ``rcu_read_lock_sched``.
  ``pfn_section_valid`` loads ``READ_ONCE(ms->usage)`` and still dereferences it: a
  walker between ``valid_section`` and that load can find NULL.
- v6.10 (CVE-2024-41055, "mm: prevent derefencing NULL ptr in pfn_section_valid()"):
  ``pfn_section_valid`` returns 0 for a NULL ``usage``.

A read of freed ``usage`` is a use after free reported by the engine under
``no-metadata-after-teardown`` (I3); a dereference of NULL ``usage`` is a finding under
the same property, as the oops it is. The versions of v6.8 and v6.10 are in
:mod:`pfnlab.mm.sparse_rcu`, for variants to run in place of these.
"""

from __future__ import annotations

from typing import cast

from pfnlab.explore import fail, free, note
from pfnlab.kernel.kfunc import kfunc
from pfnlab.mm.hooks import host, run_free_hooks
from pfnlab.mm.memmap import (
    ABSENT,
    SECTION_HAS_MEM_MAP,
    SECTION_IS_EARLY,
    SECTION_IS_ONLINE,
    MemSectionUsage,
    Section,
)
from pfnlab.mm.props import NO_METADATA_AFTER_TEARDOWN
from pfnlab.mm.rcu import kfree


def __pfn_to_section(pfn: int) -> Section | None:
    """include/linux/mmzone.h v5.4: the mem_section of ``pfn`` (None: no section there)."""
    sec: Section | None = host().sections.get(pfn)
    return sec


def subsection_map_index(ms: Section, pfn: int) -> int:
    """include/linux/mmzone.h v5.4: the bit of ``pfn`` in ``usage->subsection_map``."""
    return pfn - ms.start_pfn


@kfunc
def valid_section(ms: Section | None) -> bool:
    """include/linux/mmzone.h v5.4: ``section_mem_map & SECTION_HAS_MEM_MAP``."""
    return ms is not None and bool(ms.section_mem_map & SECTION_HAS_MEM_MAP)


@kfunc
def early_section(ms: Section | None) -> bool:
    """include/linux/mmzone.h v5.4: ``section_mem_map & SECTION_IS_EARLY`` (boot memory)."""
    return ms is not None and bool(ms.section_mem_map & SECTION_IS_EARLY)


@kfunc
def online_section(ms: Section | None) -> bool:
    """include/linux/mmzone.h v5.4: ``section_mem_map & SECTION_IS_ONLINE``."""
    return ms is not None and bool(ms.section_mem_map & SECTION_IS_ONLINE)


def usage_deref(ms: Section, usage: MemSectionUsage | None, fn: str, pfn: int
                ) -> MemSectionUsage:
    """``usage->``: a NULL ``ms->usage`` dereferenced is a finding (the oops)."""
    if usage is None:
        fail(NO_METADATA_AFTER_TEARDOWN, f"{fn}({pfn:#x}) dereferences {ms.name}.usage, which "
             "is NULL: section_deactivate freed it after the section was found valid")
    return cast(MemSectionUsage, usage)


@kfunc
def pfn_section_valid(ms: Section, pfn: int) -> bool:
    """include/linux/mmzone.h v5.4: ``test_bit(idx, ms->usage->subsection_map)``."""
    usage = usage_deref(ms, ms.usage, "pfn_section_valid", pfn)
    return bool(usage.subsection_map >> subsection_map_index(ms, pfn) & 1)


def pfn_valid(pfn: int) -> bool:
    """include/linux/mmzone.h v5.4, ``pfn_valid()`` of CONFIG_SPARSEMEM read field by
    field: ``valid_section`` and (``early_section`` or ``pfn_section_valid``), no lock.

    ``pfnlab.mm.pfn_valid`` is the same test on the section's coarse ``state``; a variant
    runs this one in its place: ``overrides={"pfn_valid": pfnlab.mm.sparse.pfn_valid}``."""
    ms = __pfn_to_section(pfn)
    if not valid_section(ms):
        return False
    assert ms is not None
    return bool(early_section(ms) or pfn_section_valid(ms, pfn))


@kfunc
def section_deactivate(pfn: int, nr_pages: int) -> None:
    """mm/sparse.c v5.4: clear the sub-sections; an empty section's ``usage`` is kfree'd,
    then its flags are cleared; the memmap of the range is freed."""
    ms = host().sections[pfn]
    early = early_section(ms)
    usage = ms.usage
    mask = ((1 << nr_pages) - 1) << subsection_map_index(ms, pfn)
    if usage is None or usage.subsection_map & mask != mask:
        note(f"WARN: section already deactivated ({pfn:#x} + {nr_pages})")
        return
    usage.subsection_map = usage.subsection_map ^ mask
    if usage.subsection_map == 0:
        if not early:
            kfree(usage, (NO_METADATA_AFTER_TEARDOWN, f"{ms.name}.usage freed by "
                          "section_deactivate"))
            ms.usage = None
        ms.section_mem_map = 0  # sparse_encode_mem_map(NULL, section_nr): no flags
        ms.state = ABSENT
    depopulate_section_memmap(pfn, nr_pages)


def depopulate_section_memmap(pfn: int, nr_pages: int) -> None:
    """mm/sparse.c v5.4: free the struct pages of the range (a later read is I3's)."""
    h = host()
    for p in range(pfn, pfn + nr_pages):
        free(h.memmap[p], (NO_METADATA_AFTER_TEARDOWN,
                           f"memmap of pfn {p:#x} removed by section_deactivate"))
        run_free_hooks(h.memmap[p])


@kfunc
def sparse_remove_section(pfn: int, nr_pages: int) -> None:
    """mm/sparse.c v5.4: what ``__remove_pages`` runs for each section of the range."""
    section_deactivate(pfn, nr_pages)


__all__ = [
    "__pfn_to_section",
    "depopulate_section_memmap",
    "early_section",
    "online_section",
    "pfn_section_valid",
    "pfn_valid",
    "section_deactivate",
    "sparse_remove_section",
    "subsection_map_index",
    "usage_deref",
    "valid_section",
]
