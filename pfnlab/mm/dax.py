"""Teardown threads: device-dax unbind, fsdax layout breaking, process exit and munmap.

Device-dax unbind runs the devm actions of ``dev_dax_probe`` in reverse (drivers/dax/
device.c v5.4): ``dev_dax_kill`` -> ``kill_dev_dax`` (``kill_dax`` clears DAXDEV_ALIVE and
waits for dax_srcu readers, then ``unmap_mapping_range`` zaps every user mapping, firing
the MMU notifiers), ``dev_dax_cdev_del`` (nothing to model), then
``devm_memremap_pages_release`` -> ``memunmap_pages``.
"""

from __future__ import annotations

from collections.abc import Callable

from pfnlab.explore import Field, Shared, Srcu, context, wait_until
from pfnlab.kernel.kfunc import kfunc
from pfnlab.mm.memmap import pfn_to_page
from pfnlab.mm.memremap import TEARDOWN_TERMINATES, DevPagemap, memunmap_pages
from pfnlab.mm.notifier import (
    mmu_notifier_release,
    tlb_finish_mmu,
    unmap_mapping_range,
    unmap_page_range,
    zap_page_range_single,
)
from pfnlab.mm.page import Page, page_ref_count
from pfnlab.mm.vma import AddressSpace, Mm, PteVal, Vma


class DaxDevice(Shared):
    """A ``struct dax_device`` + ``dev_dax``: liveness, SRCU readers, pgmap, inode mapping."""

    alive: Field[bool] = Field(True)  # DAXDEV_ALIVE

    def __init__(self, name: str, pgmap: DevPagemap, mapping: AddressSpace, align: int) -> None:
        super().__init__(f"dax:{name}")
        self.srcu = Srcu(f"dax:{name}.dax_srcu")  # dax_srcu (one per device in the model)
        self.pgmap = pgmap
        self.mapping = mapping
        self.align = align  # region alignment in pages (1 or mm.pmd_pages)


@kfunc
def dax_read_lock(dax_dev: DaxDevice) -> None:
    """drivers/dax/super.c v5.4: srcu_read_lock(&dax_srcu)."""
    dax_dev.srcu.read_lock()


@kfunc
def dax_read_unlock(dax_dev: DaxDevice) -> None:
    """drivers/dax/super.c v5.4: srcu_read_unlock(&dax_srcu)."""
    dax_dev.srcu.read_unlock()


@kfunc
def kill_dax(dax_dev: DaxDevice) -> None:
    """drivers/dax/super.c v5.4: clear DAXDEV_ALIVE, synchronize_srcu(&dax_srcu)."""
    dax_dev.alive = False
    dax_dev.srcu.synchronize(f"{dax_dev.name} synchronize_srcu", prop=TEARDOWN_TERMINATES)


@kfunc
def kill_dev_dax(dax_dev: DaxDevice) -> None:
    """drivers/dax/bus.c v5.4: kill_dax, then unmap_mapping_range(i_mapping, 0, 0, 1)."""
    kill_dax(dax_dev)
    unmap_mapping_range(dax_dev.mapping, 0, 0, 1)


@kfunc
def dev_dax_unbind(dax_dev: DaxDevice) -> None:
    """drivers/dax/device.c v5.4 (thread body): devm release: dev_dax_kill, memunmap_pages."""
    kill_dev_dax(dax_dev)
    memunmap_pages(dax_dev.pgmap)


def dev_dax_fault_handler(dax_dev: DaxDevice) -> Callable[[Vma, int, bool], bool]:
    """The ``vm_ops->fault`` hook of a device-dax VMA (bound to its device)."""

    def fault(vma: Vma, hva: int, write: bool) -> bool:
        return bool(dev_dax_huge_fault(dax_dev, vma, hva, write))

    return fault


@kfunc
def dev_dax_huge_fault(dax_dev: DaxDevice, vma: Vma, hva: int, write: bool) -> bool:
    """drivers/dax/device.c v5.4: under dax_read_lock, check_vma (alive), insert devmap entry."""
    dax_read_lock(dax_dev)
    ok = bool(dax_dev.alive)  # check_vma: -ENXIO -> SIGBUS when dead
    if ok:
        mm = vma.mm
        index = vma.pgoff + (hva - vma.start)
        mm.ptl.acquire()
        if dax_dev.align > 1:
            base = index - index % dax_dev.align
            pmdp = mm.pmd(hva)
            assert pmdp is not None
            if pmdp.val is None:  # vmf_insert_pfn_pmd
                pmdp.val = PteVal(dax_dev.mapping.pfns[base], devmap=True, special=True, huge=True)
        else:
            ptep = mm.ptes[hva]
            if ptep.val is None:  # vmf_insert_mixed -> insert_pfn (pte_mkdevmap)
                ptep.val = PteVal(dax_dev.mapping.pfns[index], devmap=True, special=True)
        mm.ptl.release()
    dax_read_unlock(dax_dev)
    return ok


# --------------------------------------------------------------------------- fsdax
@kfunc
def dax_layout_busy_page(mapping: AddressSpace) -> Page | None:
    """fs/dax.c v5.4: unmap_mapping_range, then the first page with refcount > 1.

    Returns that busy page (no reference taken: the caller waits on its refcount), or
    NULL when every page is idle."""
    unmap_mapping_range(mapping, 0, 0, 0)
    for pfn in mapping.pfns:
        page = pfn_to_page(pfn)
        if page_ref_count(page) > 1:
            return page
    return None


@kfunc
def fsdax_break_layouts(mapping: AddressSpace) -> None:
    """fs/xfs/xfs_file.c v5.4 xfs_break_dax_layouts loop (thread body, before truncate)."""
    memmap = getattr(context(), "host", None)
    for pfn in mapping.pfns:  # ledger: this teardown waits for the pages' references
        page = memmap.memmap.get(pfn) if memmap is not None else None
        if page is not None and page.__dict__.get("pgmap") is not None:
            page.__dict__["pgmap"].teardown = True
    while True:
        page = dax_layout_busy_page(mapping)
        if page is None:
            return
        wait_page_idle(page)


def wait_page_idle(page: Page) -> None:
    """fs/xfs/xfs_file.c v5.4: ___wait_var_event(&page->_refcount, count == 1)."""
    wait_until(
        lambda: page.refcount == 1,
        what=f"{page.name} refcount back to 1 (dax layout break)",
        prop=TEARDOWN_TERMINATES,
    )


# --------------------------------------------------------------------------- process side
@kfunc
def exit_mmap(mm: Mm) -> None:
    """mm/mmap.c v5.4 (thread body: VM exit): mmu_notifier_release, then unmap every VMA."""
    mmu_notifier_release(mm)
    vmas = mm.vmas
    for vma in vmas:
        tlb_finish_mmu(unmap_page_range(vma, vma.start, vma.end))
    mm.vmas = ()


@kfunc
def vm_munmap(mm: Mm, start: int, end: int) -> None:
    """mm/mmap.c v5.4 (thread body): remove the VMAs in [start, end) and zap them."""
    mm.mmap_sem.down_write()
    vmas = mm.vmas
    gone = [v for v in vmas if v.start < end and start < v.end]
    mm.vmas = tuple(v for v in vmas if v not in gone)
    for vma in gone:
        zap_page_range_single(vma, start, end)
    mm.mmap_sem.up_write()
