"""A file on an fsdax (pmem) filesystem mapped into the VMM: 4K PTEs or huge PMDs.

fsdax pages are order-0 ZONE_DEVICE pages (``MEMORY_DEVICE_FS_DAX``): never compound, so
``PageCompound``, ``PageTransCompound`` and ``PageTransCompoundMap`` are false whatever maps
them, and only the page tables say how big the mapping is. A fault maps them by
``dax_iomap_pte_fault`` (``vmf_insert_mixed``: a devmap PTE) or, where the VMA allows huge
pages and the file's extent is 2M-aligned, by ``dax_iomap_pmd_fault``
(``vmf_insert_pfn_pmd``: a devmap huge PMD over 2M of non-compound pages; fs/dax.c,
mm/huge_memory.c v5.4). The set-up builds what those faults leave.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pfnlab.mm.memremap import MEMORY_DEVICE_FS_DAX, DevPagemap, memremap_pages
from pfnlab.mm.vma import VM_HUGEPAGE, VM_WRITE, AddressSpace, PteVal

if TYPE_CHECKING:
    from pfnlab.mm.host import Host, Region


def fsdax_region(host: Host, npages: int, name: str, align: int, huge: bool) -> Region:
    """fs/dax.c v5.4: an fsdax file of ``npages`` mapped whole, by devmap PTEs
    (``dax_iomap_pte_fault``) or, ``huge``, by devmap huge PMDs (``dax_iomap_pmd_fault``).

    ``align`` 1 or ``host.pmd_pages``: the alignment of the file's pfns (its extent on the
    pmem namespace). ``huge`` needs ``align == pmd_pages``; ``align == pmd_pages`` without
    ``huge`` is a file that could be mapped huge but is mapped 4K (MADV_NOHUGEPAGE: v5.4's
    ``__transparent_hugepage_enabled`` then refuses ``create_huge_pmd``)."""
    from pfnlab.mm.host import Region

    pmd = host.pmd_pages
    if align not in (1, pmd) or npages % align:
        raise ValueError(f"fsdax align must be 1 or {pmd} and divide npages")
    if huge and align != pmd:
        raise ValueError(f"add_fsdax(huge=True) maps 2M PMDs: it needs align={pmd}")
    pfn = host._alloc_pfns(npages, align)
    pgmap = DevPagemap(name, MEMORY_DEVICE_FS_DAX, pfn, npages)
    memremap_pages(host, pgmap)
    mapping = AddressSpace(f"{name}.file", tuple(range(pfn, pfn + npages)))
    hva = host._alloc_hvas(npages)
    vma = host._vma(name, hva, npages, VM_WRITE | (VM_HUGEPAGE if huge else 0), dax=True,
                    mapping=mapping)
    mapping.vmas.append(vma)
    if huge:
        # vmf_insert_pfn_pmd -> insert_pfn_pmd: pmd_mkhuge(pmd_mkdevmap(pfn_t_pmd(...)))
        host._pmds(hva, npages, [PteVal(pfn + k * pmd, devmap=True, special=True, huge=True)
                                 for k in range(npages // pmd)])
    else:
        host._ptes(hva, [PteVal(pfn + i, devmap=True, special=True) for i in range(npages)])
    pages = tuple(host.memmap[p] for p in range(pfn, pfn + npages))
    return Region(name, "fsdax", hva, hva + npages, pfn, vma, pgmap, None, mapping, pages)
