"""The pfn space: memory sections, the memmap (``struct page`` array) and pfn lookups.

Model choices:

- A *section* is the unit of memory hotplug. The model gives every ``arch_add_memory`` call
  its own :class:`Section` (sub-section hotplug granularity), so a ZONE_DEVICE range never
  shares a section with online RAM. ``Section.state`` is a shared field (``"online"`` for
  boot/onlined RAM, ``"present"`` for memory that has a memmap but was never onlined, which
  is every ZONE_DEVICE range, and ``"absent"`` once ``arch_remove_memory`` ran): it plays the
  role of ``ms->section_mem_map`` flags read by ``pfn_valid`` and ``online_section_nr``.
- The memmap is the host's ``memmap`` dict (pfn -> :class:`~pfnlab.mm.page.Page`). It is
  set up before the threads run and never changes; ``arch_remove_memory`` *frees* the page
  objects instead of removing them, so a later access to one is a use-after-free finding
  reported under ``no-metadata-after-teardown`` (I3). ``pfn_to_page`` is pointer arithmetic
  in the kernel (vmemmap) and is not a scheduling point here either.
- The sparse-section metadata of mm/sparse.c is there too, for models of its lockless
  readers (:mod:`pfnlab.mm.sparse`): ``Section.section_mem_map`` holds the ``SECTION_*``
  flags and ``Section.usage`` the ``struct mem_section_usage`` whose ``subsection_map``
  has a bit per page of the section (a page is a sub-section here). Boot RAM sections are
  early (``SECTION_IS_EARLY``), device sections are not. ``arch_remove_memory`` above is
  the v5.4 removal as the built-in scenarios see it (``state``, then the memmap);
  ``section_deactivate`` is the same removal step by step, metadata included.
- pfns in no section (MMIO, ``VM_IO|VM_PFNMAP`` memory without ``struct page``) are never
  valid; ``pfn_valid`` answers for them without a scheduling point since nothing can change.
"""

from __future__ import annotations

from typing import Any, cast

from pfnlab.explore import Field, Shared, Stable, fail, free
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kernel.ordering import FREED, orders
from pfnlab.mm.hooks import (  # re-exported: pfnlab.mm.memmap.host as before
    host,
    run_ad_hooks,
    run_free_hooks,
    run_pte_hooks,
    run_ref_hooks,
)
from pfnlab.mm.mm_types import Page, page_pinned
from pfnlab.mm.props import NO_METADATA_AFTER_TEARDOWN

__all__ = ["host", "run_ad_hooks", "run_free_hooks", "run_pte_hooks", "run_ref_hooks"]

ONLINE = "online"
PRESENT = "present"
ABSENT = "absent"

# include/linux/mmzone.h v5.4: the flag bits in the low bits of ms->section_mem_map
SECTION_MARKED_PRESENT = 1 << 0
SECTION_HAS_MEM_MAP = 1 << 1
SECTION_IS_ONLINE = 1 << 2
SECTION_IS_EARLY = 1 << 3


def section_pinned(sec: Section, who: str) -> bool:
    """Thread ``who`` holds a reference on a page of the section: ``arch_remove_memory``
    runs only after the last one is put (v5.4's ``memunmap_pages`` waits), so ``pfn_valid``
    on a pfn the caller holds a reference to is stable (no steps; read by the engine). The
    thread that removes device memory (``Host.removed_by``) holds its device sections."""
    if sec.device and host().remover == who:
        return True  # the thread that removes it (Host.removed_by)
    return any(page_pinned(p, who) for p in sec.pages)


class MemSectionUsage(Shared):
    """``struct mem_section_usage`` (include/linux/mmzone.h v5.4): ``subsection_map``, a
    bit per present sub-section (here: per page of the section). Freed by
    ``section_deactivate`` when the section empties; a read after that is a use after free
    reported under ``no-metadata-after-teardown`` (I3)."""

    subsection_map: Field[int] = Field(0)


orders(MemSectionUsage, FREED,
       primitive="RCU (kfree_rcu() of ms->usage, pfn_valid() inside rcu_read_lock_sched())",
       how="section_deactivate() clears SECTION_HAS_MEM_MAP before it frees ms->usage, "
           "and frees it with kfree_rcu(): usage outlives every pfn_valid() that found the "
           "section valid inside its read-side section; a NULL usage read with READ_ONCE() "
           "is 'not valid'",
       where="mm/sparse.c and include/linux/mmzone.h, 5ec8e8ea8b77 (v6.8, "
             "CVE-2023-52489); the NULL check from v6.10 (CVE-2024-41055)")


class Section(Shared):
    """A memory section (``struct mem_section``) covering ``[start_pfn, start_pfn + nr)``.

    ``state`` is the coarse view the built-in scenarios read (``pfn_valid`` of
    :mod:`pfnlab.mm.memmap`); ``section_mem_map`` (the ``SECTION_*`` flags) and ``usage``
    (a :class:`MemSectionUsage`, None once freed) are the kernel's fields, read by the
    functions of :mod:`pfnlab.mm.sparse`. ``SECTION_HAS_MEM_MAP`` set with ``usage``
    freed or None is the window of the v5.4 race (v6.8 clears the flag first and frees
    ``usage`` only after a grace period).
    """

    state: Stable[str] = Stable(PRESENT, pinned=lambda s, who: section_pinned(s, who))
    section_mem_map: Field[int] = Field(0)
    usage: Field[MemSectionUsage | None] = Field(None)

    def __init__(self, name: str, start_pfn: int, nr_pages: int, device: bool) -> None:
        super().__init__(name)
        self.start_pfn = start_pfn
        self.nr_pages = nr_pages
        self.device = device
        self.pages: list[Page] = []  # set-up: its memmap (arch_add_memory)
        # sparse_add_section: present, with a memmap; boot RAM is early, hotplug is not
        self.section_mem_map = (SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP
                                | (0 if device else SECTION_IS_EARLY))
        usage = MemSectionUsage(f"usage@{start_pfn:#x}")
        usage.subsection_map = (1 << nr_pages) - 1
        self.usage = usage


def online_mem_sections(sec: Section) -> Section:
    """mm/sparse.c v5.4 (set-up only): the section is online RAM (``SECTION_IS_ONLINE``)."""
    sec.state = ONLINE
    sec.section_mem_map = sec.section_mem_map | SECTION_IS_ONLINE
    return sec


@kfunc
def pfn_valid(pfn: int) -> bool:
    """include/linux/mmzone.h v5.4: the pfn has a memmap (section present, not removed)."""
    sec = host().sections.get(pfn)
    if sec is None:
        return False
    return bool(sec.state != ABSENT)


@kfunc
def pfn_to_page(pfn: int) -> Page:
    """include/asm-generic/memory_model.h v5.4: vmemmap + pfn (the page may be freed).

    Returns the struct page; reading it after its memmap was removed is a finding."""
    page = host().memmap.get(pfn)
    if page is None:
        fail(NO_METADATA_AFTER_TEARDOWN, f"pfn_to_page({pfn:#x}): the pfn never had a memmap")
    return page


@kfunc
def pfn_to_online_page(pfn: int) -> Page | None:
    """include/linux/memory_hotplug.h v5.4: the page if the pfn's section is online, else NULL."""
    sec = host().sections.get(pfn)
    if sec is None or sec.state != ONLINE:
        return None
    return pfn_to_page(pfn)


@kfunc
def is_zero_pfn(pfn: int) -> bool:
    """include/linux/mm.h v5.4 (x86): pfn == zero_pfn (a global, no struct page access)."""
    return bool(pfn == host().zero_pfn)


def arch_add_memory(h: Any, start_pfn: int, nr_pages: int, *, device: bool) -> Section:
    """arch/x86/mm/init_64.c v5.4 (set-up only): add a section and allocate its memmap.

    The pages are created uninitialised (refcount 0, zone NORMAL); the caller initialises
    them (``online_pages`` for RAM, ``memmap_init_zone_device`` for ZONE_DEVICE).
    """
    sec = Section(f"section@{start_pfn:#x}", start_pfn, nr_pages, device)
    for pfn in range(start_pfn, start_pfn + nr_pages):
        if pfn in h.sections:
            raise ValueError(f"pfn {pfn:#x} is already in a section")
        h.sections[pfn] = sec
        h.memmap[pfn] = Page(pfn)
        sec.pages.append(h.memmap[pfn])
    return sec


@kfunc
def arch_remove_memory(start_pfn: int, nr_pages: int) -> None:
    """arch/x86/mm/init_64.c v5.4: section_deactivate; pfn_valid turns false, memmap freed."""
    h = host()
    sec = h.sections[start_pfn]
    sec.state = ABSENT
    for pfn in range(start_pfn, start_pfn + nr_pages):
        why = (NO_METADATA_AFTER_TEARDOWN, f"memmap of pfn {pfn:#x} removed by arch_remove_memory")
        free(h.memmap[pfn], cast(Any, why))  # the engine takes (property id, text) too
        run_free_hooks(h.memmap[pfn])
