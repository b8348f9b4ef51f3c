"""The host: pfn space, memmap, pgmaps and the VM's user mm, built class by class.

Build it inside a program's ``build()`` (it creates shared objects) and install it with
``set_context(World(host=host, ...))``. Every ``add_*`` builder allocates a fresh pfn range
and a fresh, PMD-aligned hva range in ``host.mm`` and returns a :class:`Region`.

Sizes: hvas and pfns are page numbers. The model's "2M" is a PMD of ``pmd_pages`` =
``2**pmd_order`` pages (default 2): THP, hugetlb and 2M-aligned device-dax use it, so a huge
page has 2 subpages unless a scenario asks for more. Everything stays small on purpose.

Baseline references (ledger owners in parentheses):

==================  ==========  =======================================================
class               refcount    PTEs
==================  ==========  =======================================================
anon 4K             1 (mapping) normal, writable
THP                 1 (mapping) one huge PMD; tails 0; PMD-mapped (TransCompoundMap)
hugetlb             2 (pagecache, mapping) one huge PMD; vma pagesize = pmd_pages
zero page           1           special, read-only (x86 maps the zero pfn pte_special)
devdax / fsdax      1 (memmap_init) devmap (no reference); 4K or 2M-aligned/PMD-mapped
PFNMAP no page      --          special, VM_IO|VM_PFNMAP, pfns outside any section
PFNMAP with page    1 (driver) or 0  special, VM_IO|VM_PFNMAP (remap_pfn_range)
MIXEDMAP with page  2 (driver, mapping) normal (vm_insert_page)
compound (non-THP)  head 1 (driver)  special, VM_IO|VM_PFNMAP; PageTransCompoundMap true
==================  ==========  =======================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pfnlab.mm.dax import DaxDevice, dev_dax_fault_handler
from pfnlab.mm.memmap import Section, arch_add_memory, online_mem_sections
from pfnlab.mm.memremap import (
    MEMORY_DEVICE_DEVDAX,
    MEMORY_DEVICE_FS_DAX,
    DevPagemap,
    memremap_pages,
)
from pfnlab.mm.owners import DRIVER, HOST_OWNERS, KSM, MAPPING, PAGECACHE
from pfnlab.mm.page import HUGETLB, OTHER, THP, Page
from pfnlab.mm.rcu import RcuState
from pfnlab.mm.vma import (
    TABLE,
    VM_HUGEPAGE,
    VM_HUGETLB,
    VM_IO,
    VM_MIXEDMAP,
    VM_PFNMAP,
    VM_WRITE,
    AddressSpace,
    Mm,
    Pte,
    PteVal,
    Vma,
)


@dataclass(frozen=True)
class PagePool:
    """Free pages of RAM (``Host.add_free``): what ``alloc_page`` allocates from."""

    name: str
    pfn: int
    pages: tuple[Page, ...] = field(repr=False)


@dataclass(frozen=True)
class Region:
    """What a builder made: hvas ``[start, end)`` in ``host.mm``, backed by ``pfn..``."""

    name: str
    kind: str
    start: int
    end: int
    pfn: int
    vma: Vma
    pgmap: DevPagemap | None = None
    dax: DaxDevice | None = None
    mapping: AddressSpace | None = None
    pages: tuple[Page, ...] = field(default=(), repr=False)
    pool: PagePool | None = None  # free pages anonymous faults allocate from (refault)

    @property
    def hvas(self) -> range:
        """The hvas of the region."""
        return range(self.start, self.end)

    @property
    def npages(self) -> int:
        """Number of pages (hvas) in the region."""
        return self.end - self.start

    def hva_of(self, pfn: int) -> int:
        """The hva mapping ``pfn`` in this region."""
        return self.start + (pfn - self.pfn)

    def pfn_of(self, hva: int) -> int:
        """The pfn mapped at ``hva`` in this region (as set up)."""
        return self.pfn + (hva - self.start)


class Host:
    """The host's memory: sections, memmap, pgmaps, the zero page and the VM's ``mm``."""

    def __init__(
        self,
        *,
        pmd_order: int = 1,
        first_pfn: int = 0x100,
        first_hva: int = 0x10,
        mm_name: str = "mm",
    ) -> None:
        self.pmd_pages = 1 << pmd_order
        self.sections: dict[int, Section] = {}  # pfn -> section
        self.memmap: dict[int, Page] = {}  # pfn -> struct page
        self.pgmaps: dict[int, DevPagemap] = {}  # pgmap_array: pfn -> pgmap
        self.devmap_managed_key = False  # static key: an fsdax pgmap exists
        #: ghost callbacks ``hook(page)`` run (no steps) when a page's freed state changes:
        #: its refcount reaches or leaves 0, or its memmap is removed (see
        #: :func:`~pfnlab.mm.memmap.run_free_hooks`); subscribers register at set-up
        self.free_hooks: list[Callable[[Page], None]] = []
        #: ghost callbacks ``hook(head, owner, delta)`` run (no steps) by the primitives
        #: that change a refcount on behalf of a named owner: ``delta`` +1 right after a get,
        #: -1 right before a put; see
        #: :func:`~pfnlab.mm.memmap.run_ref_hooks`. The VM's ledger subscribes, so that no
        #: caller has to record the references KVM takes and drops.
        self.ref_hooks: list[Callable[[Page, str, int], None]] = []
        #: ghost callbacks ``hook(page, what)`` run right before ``SetPageDirty`` or
        #: ``mark_page_accessed`` (``what``) sets a bit on ``page``
        self.ad_hooks: list[Callable[[Page, str], None]] = []
        #: ghost callbacks ``hook(pte, value)`` run right after a model thread read a page
        #: table entry (:class:`~pfnlab.mm.ptefield.PteField`)
        self.pte_hooks: list[Callable[[Any, Any], None]] = []
        #: ghost callbacks ``hook(event, kernel_map)`` run (no steps) by ``kmap``,
        #: ``memremap``, their unmaps and ``mapped_access`` (:mod:`pfnlab.mm.kmap`)
        self.map_hooks: list[Callable[[str, Any], None]] = []
        #: the owners of the host's own references (pfnlab.mm.owners): not a client's
        self.host_owners: set[str] = set(HOST_OWNERS)
        self.regions: list[Region] = []
        #: the thread that removes device memory, if the scenario says (see ``removed_by``)
        self.remover: str | None = None
        self._pfn = first_pfn
        self._hva = first_hva - first_hva % self.pmd_pages
        self.mm = Mm(mm_name, self.pmd_pages)
        self.rcu = RcuState("rcu")  # the RCU domain (pfnlab.mm.rcu)
        zp = self._alloc_pfns(1)
        online_mem_sections(arch_add_memory(self, zp, 1, device=False))
        zero = self.memmap[zp]
        zero.refcount = 1
        zero.reserved = True
        self.zero_pfn = zp
        self.zero_page = zero

    def removed_by(self, thread: str) -> None:
        """Declare that model thread ``thread`` is the one that removes device memory
        (``memunmap_pages`` -> ``arch_remove_memory``) in this scenario.

        Its own reads of a device page's flags, zone and pgmap, and of a device section
        (``pfn_valid``), then need no scheduling point: nothing else removes them, so nothing
        changes them under it (the kernel's teardown path reads its own memmap unlocked).
        Checked, never trusted: a write or free of them by another thread while ``thread``
        runs turns them back into steps for the program (docs/reductions.md section 11)."""
        self.remover = thread

    # ------------------------------------------------------------------ helpers
    def page(self, pfn: int) -> Page:
        """The struct page of ``pfn`` (set-up and checks; no scheduling point)."""
        return self.memmap[pfn]

    def _alloc_pfns(self, n: int, align: int = 1) -> int:
        pfn = -(-self._pfn // align) * align
        self._pfn = pfn + n + self.pmd_pages  # leave a hole after every range
        return pfn

    def _alloc_hvas(self, n: int) -> int:
        a = self.pmd_pages
        hva = -(-self._hva // a) * a
        self._hva = hva + n + a  # a guard gap between VMAs
        return hva

    def _ram(self, n: int, align: int = 1) -> tuple[int, list[Page]]:
        pfn = self._alloc_pfns(n, align)
        online_mem_sections(arch_add_memory(self, pfn, n, device=False))
        return pfn, [self.memmap[p] for p in range(pfn, pfn + n)]

    def _vma(self, name: str, start: int, n: int, flags: int, **kw: Any) -> Vma:
        vma = Vma(f"vma:{name}", self.mm, start, start + n, flags, **kw)
        self.mm.vmas = tuple(sorted((*self.mm.vmas, vma), key=lambda v: v.start))
        return vma

    def _ptes(self, start: int, vals: list[PteVal | None]) -> None:
        for i, v in enumerate(vals):
            pte = Pte(f"pte:{self.mm.name}@{start + i:#x}", start + i)
            pte.val = v
            self.mm.ptes[start + i] = pte

    def _pmds(self, start: int, n: int, vals: list[Any]) -> None:
        for i in range(n // self.pmd_pages):
            hva = start + i * self.pmd_pages
            pmd = Pte(f"pmd:{self.mm.name}@{hva:#x}", hva, self.pmd_pages)
            pmd.val = vals[i]
            self.mm.pmds[hva // self.pmd_pages] = pmd

    def _name(self, kind: str, name: str | None) -> str:
        return name or f"{kind}{sum(r.kind == kind for r in self.regions)}"

    def _add(self, region: Region) -> Region:
        self.regions.append(region)
        return region

    def host_owner(self, name: str) -> str:
        """Declare ``name`` an owner of references the host itself holds (set-up): a model
        whose host-side code takes references under a name of its own declares it, so that
        KVM's ledger, which follows every other owner, does not count them. Returns it."""
        self.host_owners.add(name)
        return name

    # ------------------------------------------------------------------ builders
    def add_anon(
        self, npages: int = 1, *, writable: bool = True, name: str | None = None,
        refault: int = 0,
    ) -> Region:
        """Anonymous 4K pages, faulted in: refcount 1 held by the PTE mapping. With
        ``refault`` N, a PTE zapped (MADV_DONTNEED) faults in again (``do_anonymous_page``):
        a write fault takes one of N free pages (``Region.pool``), a read fault maps the
        zero page."""
        name = self._name("anon", name)
        pfn, pages = self._ram(npages)
        for p in pages:
            p.refcount = 1
            p.anon = True
            p.owners = ((MAPPING, 1),)
        hva = self._alloc_hvas(npages)
        vma = self._vma(name, hva, npages, VM_WRITE if writable else 0)
        self._ptes(hva, [PteVal(pfn + i, write=writable) for i in range(npages)])
        pool = self._anon_pool(vma, name, refault)
        return self._add(Region(name, "anon", hva, hva + npages, pfn, vma, pages=tuple(pages),
                                pool=pool))

    def _anon_pool(self, vma: Vma, name: str, n: int) -> PagePool | None:
        if not n:
            return None
        vma.anon_pool = pool = self.add_free(n, name=f"{name}:free")
        for p in pool.pages:
            p.anon = True  # what the fault will make of them (page_add_new_anon_rmap)
        return pool

    def add_free(self, npages: int = 1, *, name: str = "free") -> PagePool:
        """Free RAM pages (refcount 0, unmapped): a pool ``alloc_page`` takes pages from
        (a migration's target pages, ``pfnlab.mm.migrate``)."""
        pfn, pages = self._ram(npages)
        return PagePool(name, pfn, tuple(pages))

    def add_ksm(self, npages: int = 1, *, name: str = "ksm") -> PagePool:
        """KSM pages (the stable tree's, set-up only): refcount 1 (owner ``ksm``), PageKsm,
        contents 0 like a fresh anonymous page; ``ksm_merge_thread`` maps them read-only in
        place of identical anonymous pages (pfnlab.mm.ksm)."""
        pfn, pages = self._ram(npages)
        for p in pages:
            p.refcount = 1
            p.anon = p.ksm = True
            p.owners = ((KSM, 1),)
        return PagePool(name, pfn, tuple(pages))

    def add_thp(self, nr_huge: int = 1, *, name: str | None = None,
                mapped: Iterable[int] | None = None) -> Region:
        """Anonymous THPs, each PMD-mapped: head refcount 1 (mapping), tails 0.

        With ``mapped`` (indices of subpages in the region) the THPs are mapped by PTEs,
        and only those subpages are (what a partial munmap or mprotect leaves after
        ``split_huge_pmd``): each PTE mapping holds a reference on its head, the mapped
        subpages have mapcount 0 and no PMD maps the THP, so ``PageTransCompoundMap`` is
        false. Every huge page keeps at least one mapped subpage (else it would be freed).
        """
        name = self._name("thp", name)
        n = nr_huge * self.pmd_pages
        subs = None if mapped is None else sorted(set(mapped))
        for i in subs or ():
            if not 0 <= i < n:
                raise ValueError(f"add_thp(mapped=...): there is no subpage {i} of a THP "
                                 f"region of {n} pages (0..{n - 1})")
        for k in range(nr_huge):
            if subs is not None and not any(k * self.pmd_pages <= i < (k + 1) * self.pmd_pages
                                            for i in subs):
                raise ValueError(f"add_thp(mapped=...) maps no subpage of huge page {k}: a "
                                 "THP nobody maps would be freed; map one of "
                                 f"{k * self.pmd_pages}..{(k + 1) * self.pmd_pages - 1}")
        pfn, pages = self._ram(n, self.pmd_pages)
        hva = self._alloc_hvas(n)
        for i, p in enumerate(pages):
            head = pfn + i - i % self.pmd_pages
            p.set_compound(THP, head, self.pmd_pages.bit_length() - 1)
            p.anon = True
            if p.pfn == head:
                self.mm.rmap[head] = hva + i
                if subs is None:
                    p.refcount = 1
                    p.compound_mapcount = 0
                    p.owners = ((MAPPING, 1),)
                else:
                    k = sum(1 for j in subs if j - j % self.pmd_pages == i)
                    p.refcount = k
                    p.owners = ((MAPPING, k),)
            if subs is not None and i in subs:
                p.mapcount = 0
        vma = self._vma(name, hva, n, VM_WRITE | VM_HUGEPAGE)
        if subs is None:
            self._ptes(hva, [None] * n)
            self._pmds(hva, n, [PteVal(pfn + k * self.pmd_pages, huge=True)
                                for k in range(nr_huge)])
        else:
            self._ptes(hva, [PteVal(pfn + i) if i in subs else None for i in range(n)])
            self._pmds(hva, n, [TABLE] * nr_huge)
        return self._add(Region(name, "thp", hva, hva + n, pfn, vma, pages=tuple(pages)))

    def add_hugetlb(self, nr_huge: int = 1, *, name: str | None = None) -> Region:
        """hugetlbfs pages mapped by huge PMDs; vma_kernel_pagesize = pmd_pages."""
        name = self._name("hugetlb", name)
        n = nr_huge * self.pmd_pages
        pfn, pages = self._ram(n, self.pmd_pages)
        for i, p in enumerate(pages):
            head = pfn + i - i % self.pmd_pages
            p.set_compound(HUGETLB, head, self.pmd_pages.bit_length() - 1)
            if p.pfn == head:
                p.refcount = 2
                p.compound_mapcount = 0
                p.owners = ((MAPPING, 1), (PAGECACHE, 1))
        hva = self._alloc_hvas(n)
        vma = self._vma(name, hva, n, VM_WRITE | VM_HUGETLB, pagesize=self.pmd_pages)
        self._pmds(hva, n, [PteVal(pfn + k * self.pmd_pages, huge=True) for k in range(nr_huge)])
        return self._add(Region(name, "hugetlb", hva, hva + n, pfn, vma, pages=tuple(pages)))

    def add_zero(self, npages: int = 1, *, name: str | None = None,
                 refault: int = 0) -> Region:
        """Anonymous memory read-faulted only: read-only special PTEs to the zero pfn. With
        ``refault`` N, a write fault copies the zero page into one of N free pages
        (``do_wp_page`` -> ``wp_page_copy``; ``Region.pool``)."""
        name = self._name("zero", name)
        hva = self._alloc_hvas(npages)
        vma = self._vma(name, hva, npages, VM_WRITE)
        self._ptes(hva, [PteVal(self.zero_pfn, write=False, special=True)] * npages)
        pool = self._anon_pool(vma, name, refault)
        return self._add(Region(name, "zero", hva, hva + npages, self.zero_pfn, vma,
                                pages=(self.zero_page,), pool=pool))

    def add_devdax(
        self,
        npages: int = 1,
        *,
        align: int = 1,
        name: str | None = None,
        populated: bool = True,
        remapped: bool = False,
    ) -> Region:
        """A device-dax instance mapped whole; ``align`` 1 (4K) or ``pmd_pages`` (2M).

        ``remapped``: the device pages are instead mapped by a driver with
        ``remap_pfn_range`` into a VM_IO|VM_PFNMAP vma of the same inode (special PTEs, no
        devmap bit, no fault handler): gup refuses them and KVM takes the
        ``hva_to_pfn_remapped`` path (Paolo, <8ba98630-9ca0-85c2-3c94-45d54a448fca@redhat.com>).
        """
        if align not in (1, self.pmd_pages) or npages % align:
            raise ValueError(f"devdax align must be 1 or {self.pmd_pages} and divide npages")
        if remapped and align != 1:
            raise ValueError("remap_pfn_range of device memory is modelled with 4K PTEs only")
        name = self._name("dax", name)
        pfn = self._alloc_pfns(npages, self.pmd_pages)
        pgmap = DevPagemap(name, MEMORY_DEVICE_DEVDAX, pfn, npages)
        memremap_pages(self, pgmap)
        mapping = AddressSpace(f"{name}.i_mapping", tuple(range(pfn, pfn + npages)))
        dax = DaxDevice(name, pgmap, mapping, align)
        hva = self._alloc_hvas(npages)
        if remapped:
            vma = self._vma(name, hva, npages, VM_WRITE | VM_IO | VM_PFNMAP, mapping=mapping)
        else:
            vma = self._vma(
                name,
                hva,
                npages,
                VM_WRITE | VM_HUGEPAGE,
                pagesize=align,
                dax=True,
                mapping=mapping,
                fault=dev_dax_fault_handler(dax),
            )
        mapping.vmas.append(vma)
        if remapped:
            self._ptes(hva, [PteVal(pfn + i, special=True) for i in range(npages)])
        elif align == 1:
            self._ptes(
                hva,
                [
                    PteVal(pfn + i, devmap=True, special=True) if populated else None
                    for i in range(npages)
                ],
            )
        else:
            self._pmds(
                hva,
                npages,
                [
                    PteVal(pfn + k * align, devmap=True, special=True, huge=True)
                    if populated
                    else None
                    for k in range(npages // align)
                ],
            )
        pages = tuple(self.memmap[p] for p in range(pfn, pfn + npages))
        return self._add(
            Region(name, "devdax", hva, hva + npages, pfn, vma, pgmap, dax, mapping, pages)
        )

    def add_fsdax(self, npages: int = 1, *, name: str | None = None, align: int = 1,
                  huge: bool = False) -> Region:
        """fs/dax.c v5.4: a file on an fsdax (pmem) filesystem mapped whole; free-at-1,
        order-0 ZONE_DEVICE pages (never compound: only the page tables say how big the
        mapping is). Mapped by devmap PTEs (``dax_iomap_pte_fault``) or, ``huge``, by devmap
        huge PMDs (``dax_iomap_pmd_fault`` -> ``vmf_insert_pfn_pmd``). ``align`` 1 or
        ``pmd_pages``: the alignment of the file's pfns; ``huge`` needs ``pmd_pages``, which
        without ``huge`` is a file that could be mapped huge but is mapped 4K
        (MADV_NOHUGEPAGE)."""
        name, pmd = self._name("pmem", name), self.pmd_pages
        if align not in (1, pmd) or npages % align:
            raise ValueError(f"fsdax align must be 1 or {pmd} and divide npages")
        if huge and align != pmd:
            raise ValueError(f"add_fsdax(huge=True) maps 2M PMDs: it needs align={pmd}")
        pfn = self._alloc_pfns(npages, align)
        pgmap = DevPagemap(name, MEMORY_DEVICE_FS_DAX, pfn, npages)
        memremap_pages(self, pgmap)
        mapping = AddressSpace(f"{name}.file", tuple(range(pfn, pfn + npages)))
        hva = self._alloc_hvas(npages)
        vma = self._vma(name, hva, npages, VM_WRITE | (VM_HUGEPAGE if huge else 0), dax=True,
                        mapping=mapping)
        mapping.vmas.append(vma)
        if huge:  # insert_pfn_pmd: pmd_mkhuge(pmd_mkdevmap(pfn_t_pmd(...)))
            self._pmds(hva, npages, [PteVal(pfn + k * pmd, devmap=True, special=True, huge=True)
                                     for k in range(npages // pmd)])
        else:
            self._ptes(hva, [PteVal(pfn + i, devmap=True, special=True) for i in range(npages)])
        pages = tuple(self.memmap[p] for p in range(pfn, pfn + npages))
        return self._add(
            Region(name, "fsdax", hva, hva + npages, pfn, vma, pgmap, None, mapping, pages)
        )

    def add_pfnmap_io(self, npages: int = 1, *, writable: bool = True,
                      name: str | None = None) -> Region:
        """VM_IO|VM_PFNMAP memory without struct page (MMIO): pfn_valid is false.
        ``writable=False``: mapped read-only (no VM_WRITE, read-only PTEs)."""
        name = self._name("mmio", name)
        pfn = self._alloc_pfns(npages)
        hva = self._alloc_hvas(npages)
        vma = self._vma(name, hva, npages, (VM_WRITE if writable else 0) | VM_IO | VM_PFNMAP)
        self._ptes(hva, [PteVal(pfn + i, write=writable, special=True) for i in range(npages)])
        return self._add(Region(name, "pfnmap_io", hva, hva + npages, pfn, vma))

    def add_pfnmap_pages(
        self,
        npages: int = 1,
        *,
        refcounted: bool = True,
        mixed: bool = False,
        writable: bool = True,
        name: str | None = None,
    ) -> Region:
        """Driver pages with struct page mapped into userspace (``writable=False``:
        read-only, no VM_WRITE and read-only PTEs).

        ``mixed=False``: remap_pfn_range, VM_IO|VM_PFNMAP, special PTEs; the pages have
        refcount 1 (``refcounted``) or 0 (e.g. tails of a non-compound higher-order
        allocation). ``mixed=True``: vm_insert_page into a VM_MIXEDMAP vma, normal PTEs that
        hold a reference (requires ``refcounted``).
        """
        if mixed and not refcounted:
            raise ValueError("vm_insert_page needs refcounted pages")
        name = self._name("mixed" if mixed else "pfnmap", name)
        pfn, pages = self._ram(npages)
        for p in pages:
            if refcounted:
                p.refcount = 2 if mixed else 1
                p.owners = ((DRIVER, 1), (MAPPING, 1)) if mixed else ((DRIVER, 1),)
        hva = self._alloc_hvas(npages)
        flags = (VM_WRITE if writable else 0) | (VM_MIXEDMAP if mixed else VM_IO | VM_PFNMAP)
        vma = self._vma(name, hva, npages, flags)
        self._ptes(hva, [PteVal(pfn + i, write=writable, special=not mixed)
                         for i in range(npages)])
        kind = "mixedmap" if mixed else "pfnmap"
        return self._add(Region(name, kind, hva, hva + npages, pfn, vma, pages=tuple(pages)))

    def add_compound(
        self, nr: int = 1, *, order: int | None = None, name: str | None = None,
        mapped: int | None = None,
    ) -> Region:
        """Non-THP compound pages (driver __GFP_COMP) remapped with VM_IO|VM_PFNMAP.

        ``mapped``: how many subpages of each compound page the driver maps (from the head;
        default all): the rest of the hvas have no PTE, as a ``remap_pfn_range`` of part
        of the allocation leaves them (a fault there is -EFAULT), while the compound page
        still says PageTransCompoundMap."""
        name = self._name("compound", name)
        size = 1 << (order if order is not None else self.pmd_pages.bit_length() - 1)
        if mapped is not None and not 0 < mapped <= size:
            raise ValueError(f"add_compound(mapped={mapped}): map 1 to {size} subpages of "
                             f"each compound page of order {size.bit_length() - 1}")
        n = nr * size
        pfn, pages = self._ram(n, size)
        for i, p in enumerate(pages):
            head = pfn + i - i % size
            p.set_compound(OTHER, head, size.bit_length() - 1)
            if p.pfn == head:
                p.refcount = 1
                p.owners = ((DRIVER, 1),)
        hva = self._alloc_hvas(n)
        vma = self._vma(name, hva, n, VM_WRITE | VM_IO | VM_PFNMAP)
        shown = size if mapped is None else mapped
        self._ptes(hva, [PteVal(pfn + i, special=True) if i % size < shown else None
                         for i in range(n)])
        return self._add(Region(name, "compound", hva, hva + n, pfn, vma, pages=tuple(pages)))


__all__ = ["DRIVER", "PAGECACHE", "Host", "Region"]
