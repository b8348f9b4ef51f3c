"""Address spaces: ``Mm``, ``Vma``, page-table entries, and lookups on them.

Units: an hva is a **page number** (a small int), not a byte address; sizes are in pages.
A model PMD covers ``mm.pmd_pages`` pages (the model's "2M"; see :class:`~pfnlab.mm.host.Host`).

Page tables: every mapped hva has a :class:`Pte` whose one field ``val`` is the whole entry
(``READ_ONCE(*ptep)`` is one scheduling point), holding a :class:`PteVal` when present,
``None`` when none, or :data:`MIGRATION` (non-present, not none). Ranges that may be mapped
at PMD level (THP, hugetlb, 2M device-dax) also have one :class:`Pte` per model PMD in
``mm.pmds``, whose ``val`` is a huge :class:`PteVal`, :data:`TABLE` (points to a PTE table),
:data:`INVALID` (pmdp_invalidate during a split), ``MIGRATION`` or ``None``. Ranges without a
PMD object are implicitly ``TABLE``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from pfnlab.explore import Field, Lock, Shared, Srcu, Stable, atomic, wait_until
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kernel.ordering import orders
from pfnlab.mm.ptefield import PteField

VM_WRITE = 0x2
VM_PFNMAP = 0x400
VM_IO = 0x4000
VM_HUGETLB = 0x400000
VM_MIXEDMAP = 0x10000000
VM_HUGEPAGE = 0x20000000

TABLE = "table"
MIGRATION = "migration"
INVALID = "invalid"


class PteVal(NamedTuple):
    """A present PTE or huge PMD: ``pfn`` is the pfn of the first page it maps."""

    pfn: int
    write: bool = True
    devmap: bool = False  # pte_devmap (ZONE_DEVICE, no page reference held by the mapping)
    special: bool = False  # pte_special (no struct page to refcount; vm_normal_page NULL)
    huge: bool = False  # a PMD-level (2M) mapping


class Pte(Shared):
    """One page-table entry (PTE, or a PMD for ``mm.pmds``): it maps the ``npages`` hvas
    from ``hva`` (a PMD: ``mm.pmd_pages``)."""

    val: Field[Any] = PteField(None)

    def __init__(self, name: str, hva: int = 0, npages: int = 1) -> None:
        super().__init__(name)
        self.hva = hva
        self.npages = npages


orders(Pte, "val", lockless=True,
       primitive="the MMU notifier (invalidate_range_start/end, then mmu_notifier_retry())",
       how="a lookup outside the page-table lock is not serialised with the PTE change; "
           "the secondary MMU reads the notifier sequence before its lookup and re-checks it "
           "under its own lock before it publishes, retrying if an invalidation ran: the "
           "mapping is refreshed from the invalidation",
       where="include/linux/mmu_notifier.h, virt/kvm/kvm_main.c, v5.4; "
             "mmu_notifier_retry_cache() in virt/kvm/pfncache.c from v6.0")


class RwSem(Shared):
    """An rw_semaphore (``mmap_sem``): ``state`` = readers, or -1 for a writer.

    Off (no steps at all) unless ``enabled`` is set during set-up: scenarios with no thread
    that takes it for writing leave it off, since readers never exclude each other.
    """

    state: Field[int] = Field(0)

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.enabled = False

    def down_read(self) -> None:
        """Take the semaphore for reading."""
        if not self.enabled:
            return
        while True:
            wait_until(lambda: self.state >= 0, what=f"{self.name} down_read")
            if atomic(self, "state", lambda s: (s + 1, True) if s >= 0 else (s, False)):
                return

    def up_read(self) -> None:
        """Release a read hold."""
        if self.enabled:
            atomic(self, "state", lambda s: (s - 1, None))

    def down_write(self) -> None:
        """Take the semaphore for writing."""
        if not self.enabled:
            return
        while True:
            wait_until(lambda: self.state == 0, what=f"{self.name} down_write")
            if atomic(self, "state", lambda s: (-1, True) if s == 0 else (s, False)):
                return

    def up_write(self) -> None:
        """Release the write hold."""
        if self.enabled:
            self.state = 0


class Mm(Shared):
    """A ``struct mm_struct``: its VMAs, page tables and MMU-notifier subscriptions."""

    # __ro_after_init in most scenarios (a write after set-up promotes it: stable.py)
    vmas: Stable[tuple[Vma, ...]] = Stable(())  # tuple of Vma, sorted by start
    notifiers: Field[tuple[Any, ...]] = Field(
        ()
    )  # tuple of subscribers (must hash stably: Shared objects)

    def __init__(self, name: str, pmd_pages: int) -> None:
        super().__init__(name)
        self.pmd_pages = pmd_pages
        self.ptes: dict[int, Pte] = {}
        self.pmds: dict[int, Pte] = {}
        self.rmap: dict[int, int] = {}  # THP head pfn -> hva mapping it (anon_vma)
        self.ptl = Lock(f"{name}.ptl")  # page_table_lock / split PTE locks, merged
        self.mmap_sem = RwSem(f"{name}.mmap_sem")
        self.notifier_srcu = Srcu(f"{name}.notifier_srcu")  # srcu walking the notifiers

    def pte(self, hva: int) -> Pte:
        """The PTE object of ``hva`` (created during set-up)."""
        return self.ptes[hva]

    def pmd(self, hva: int) -> Pte | None:
        """The PMD object covering ``hva``, if the range can be PMD-mapped."""
        return self.pmds.get(hva // self.pmd_pages)


class AddressSpace:
    """A file's ``struct address_space``: the VMAs mapping it (i_mmap) and its pages."""

    def __init__(self, name: str, pfns: tuple[int, ...] = ()) -> None:
        self.name = name
        self.i_mmap_rwsem = Lock(f"{name}.i_mmap_rwsem")
        self.vmas: list[Vma] = []
        self.pfns = pfns  # file page index -> pfn (fsdax/devdax: the backing device pages)


class Vma(Shared):
    """A ``struct vm_area_struct`` ``[start, end)`` (page numbers). Immutable after set-up."""

    def __init__(
        self,
        name: str,
        mm: Mm,
        start: int,
        end: int,
        flags: int = VM_WRITE,
        *,
        pagesize: int = 1,
        dax: bool = False,
        mapping: AddressSpace | None = None,
        pgoff: int = 0,
        fault: Callable[[Vma, int, bool], bool] | None = None,
    ) -> None:
        super().__init__(name)
        self.mm = mm
        self.start = start
        self.end = end
        self.flags = flags
        self.pagesize = pagesize  # vm_ops->pagesize (hugetlb, device-dax), in pages
        self.dax = dax  # vma_is_dax
        self.mapping = mapping
        self.pgoff = pgoff
        self.fault = fault  # vm_ops->fault / huge_fault, or None (pre-populated)
        #: anonymous memory that faults in again after a zap (MADV_DONTNEED): the free
        #: pages a write fault allocates from (``Host.add_anon(refault=N)``); None: a none
        #: PTE fails the fault, as before the model had an anonymous fault path
        self.anon_pool: Any = None

    def contains(self, hva: int) -> bool:
        """Whether ``hva`` is inside the VMA."""
        return self.start <= hva < self.end


@kfunc
def find_vma(mm: Mm, hva: int) -> Vma | None:
    """mm/mmap.c v5.4: the first VMA with vm_end > hva (it may start above hva!)."""
    vma: Vma
    for vma in mm.vmas:
        if hva < vma.end:
            return vma
    return None


@kfunc
def find_vma_intersection(mm: Mm, start: int, end: int) -> Vma | None:
    """include/linux/mm.h v5.4: find_vma, NULL unless it intersects [start, end)."""
    vma = find_vma(mm, start)
    if vma is not None and end <= vma.start:
        return None
    return vma


@kfunc
def find_extend_vma(mm: Mm, hva: int) -> Vma | None:
    """mm/mmap.c v5.4: the VMA containing hva (stack growth not modelled)."""
    vma = find_vma(mm, hva)
    if vma is None or hva < vma.start:
        return None
    return vma


@kfunc
def vma_kernel_pagesize(vma: Vma) -> int:
    """mm/hugetlb.c v5.4: vm_ops->pagesize (hugetlb, device-dax align) else PAGE_SIZE; pages.

    Returns the size in pages (1 for PAGE_SIZE)."""
    return vma.pagesize


@kfunc
def lookup_address_in_mm(mm: Mm, hva: int) -> int:
    """arch/x86/mm/pageattr.c v5.6: level of the host mapping, 2 (2M) or 1 (4K).

    A PMD that is huge or present-but-invalid/migration gives 2M, as
    ``lookup_address_in_pgd`` does; a none PMD gives NULL, which KVM treats as 4K.
    """
    pmd = mm.pmd(hva)
    if pmd is None:
        return 1
    v = pmd.val
    if v is None or v == TABLE:
        return 1
    return 2


def entry_pfn(val: PteVal, hva: int, pmd_pages: int) -> int:
    """The pfn that entry ``val`` maps at ``hva`` (huge entries map pmd_pages pages)."""
    if val.huge:
        return val.pfn + hva % pmd_pages
    return val.pfn


def pte_present(val: Any) -> bool:
    """Whether a PTE/PMD value is a present mapping."""
    return isinstance(val, PteVal)
