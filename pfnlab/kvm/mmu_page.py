"""arch/x86/kvm/mmu/mmu_internal.h, tdp_mmu.c v5.11-v5.16: TDP MMU roots and the VM's list.

The TDP MMU (v5.10 on) gives each vCPU a *root*: a ``struct kvm_mmu_page`` whose page
table maps the guest. vCPUs of the same role share one root, counted in
``tdp_mmu_root_count`` (``root_count`` before v5.13); the VM keeps every root in
``kvm->arch.tdp_mmu_roots``. A walk that may drop ``mmu_lock`` (yield) needs a root
reference across the yield, or the root may be freed meanwhile.

Model choices (the kernel objects they stand for in brackets):

- :class:`KvmMmuPage` is a root and its page table in one shared object (the header and
  ``sp->spt``, freed together). Its leaf SPTEs are :class:`~pfnlab.kvm.kvm.Spte` objects
  like the VM's own (level 1 for every gfn of every slot, level 2 for every huge-aligned
  gfn), named ``kvm.root0.spte[0x0]``: the ledger follows their writes
  (:func:`~pfnlab.kvm.ghost.origins.spte_written`) and the built-in checks read them
  (:meth:`~pfnlab.kvm.kvm.Kvm.all_sptes`). Every walk reaches them through the root's
  ``spt`` field, so a walk on a freed root touches freed memory: the engine's
  use-after-free, reported under ``no-root-after-free``. Non-leaf SPTEs are not modelled:
  the 4K SPTEs of a huge-aligned block are always reachable below its level-2 entry.
- The root pages come from a pool made at set-up (:func:`kvm_mmu_init_tdp_mmu`), as the
  kernel takes them from the vCPU's memory caches (``mmu_topup_memory_caches``).
- ``tdp_mmu_root_count`` is changed under ``mmu_lock`` held for write only, so the model
  does not need the v5.13 atomic ``refcount_t``; the root is freed at once when the count
  reaches 0 (v5.11-v5.12 ``kvm_tdp_mmu_free_root``). From v5.13 the free waits for an RCU
  grace period (``call_rcu``), which changes nothing in this model: every modelled walk
  leaves its RCU read-side section exactly when it drops ``mmu_lock``
  (``tdp_mmu_iter_cond_resched``), and lockless walks (``fast_page_fault``) are not
  modelled. ``role.invalid`` (fast invalidation, v5.13) and address spaces are not modelled.
- ``mmu_lock`` is one exclusive lock: the read mode of v5.12's rwlock (TDP MMU faults and
  zaps with atomic SPTE updates, ``shared == true``) and the ``tdp_mmu_pages`` list of
  non-root pages are not modelled.
"""

from __future__ import annotations

from typing import Any

from pfnlab.explore import Guarded, Lock, Plain, Shared
from pfnlab.kvm.kvm import PT_DIRECTORY_LEVEL, PT_PAGE_TABLE_LEVEL, Kvm, Spte, Vcpu


class KvmMmuPage(Shared):
    """``struct kvm_mmu_page`` of a TDP MMU root (mmu_internal.h v5.11+): its count and table."""

    #: ``tdp_mmu_root_count``: references to the root (its vCPUs, walks across a yield)
    tdp_mmu_root_count: Guarded[int] = Guarded(0, by="mmu_lock")
    #: ``sp->spt``: the page table, the root's SPTEs in walk order; () until allocated
    spt: Guarded[tuple[Spte, ...]] = Guarded((), by="mmu_lock")
    #: ``link``: the next root in ``kvm->arch.tdp_mmu_roots`` (None: the last)
    link: Guarded[KvmMmuPage | None] = Guarded(None, by="mmu_lock")

    def __init__(self, name: str, kvm: Kvm) -> None:
        super().__init__(name)
        self.mmu_lock: Lock = kvm.mmu_lock  # the guard of the fields
        self.root_level = PT_DIRECTORY_LEVEL if kvm.hpage_pages > 1 else PT_PAGE_TABLE_LEVEL
        self.hpage_pages = kvm.hpage_pages
        #: the SPTE objects of the table (set-up; reached by walks only through ``spt``)
        self.table: tuple[Spte, ...] = ()
        #: ``(level, gfn)`` → position in ``table``
        self.index: dict[tuple[int, int], int] = {}
        #: one past the highest gfn the table maps
        self.max_gfn = 0
        for slot in kvm.__dict__["memslots"]:
            for gfn in range(slot.base_gfn, slot.base_gfn + slot.npages):
                if self.root_level > PT_PAGE_TABLE_LEVEL and gfn % kvm.hpage_pages == 0:
                    self._spte(kvm, PT_DIRECTORY_LEVEL, gfn, slot.id)
                self._spte(kvm, PT_PAGE_TABLE_LEVEL, gfn, slot.id)
                self.max_gfn = max(self.max_gfn, gfn + 1)
        if self.root_level > PT_PAGE_TABLE_LEVEL:  # whole blocks
            self.max_gfn = -(-self.max_gfn // kvm.hpage_pages) * kvm.hpage_pages

    def _spte(self, kvm: Kvm, level: int, gfn: int, slot_id: int) -> None:
        name = f"{self.name}.spte{'' if level == 1 else '2M'}[{gfn:#x}]"
        sp = Spte(name, level, gfn, slot_id, kvm.ledger_hooks)
        sp.mmu_lock = kvm.mmu_lock
        self.index[(level, gfn)] = len(self.table)
        self.table = (*self.table, sp)


class VcpuMmu(Shared):
    """``vcpu->arch.mmu`` (arch/x86/include/asm/kvm_host.h v5.11+): the vCPU's root.

    Only its vCPU's thread reads and writes ``root_hpa`` (plain accesses, race-checked)."""

    root_hpa: Plain[KvmMmuPage | None] = Plain(None)


class TdpMmu(Shared):
    """``kvm->arch`` of the TDP MMU (arch/x86/include/asm/kvm_host.h v5.11+): the list of
    roots, the pool their pages come from, and each vCPU's ``arch.mmu``.

    Invariant (under ``mmu_lock``): a root is in ``tdp_mmu_roots`` exactly while its
    ``tdp_mmu_root_count`` is above 0; it is freed when it leaves the list."""

    #: ``kvm->arch.tdp_mmu_roots``: the first root (each root's ``link`` is the next)
    tdp_mmu_roots: Guarded[KvmMmuPage | None] = Guarded(None, by="mmu_lock")
    #: how many pages of ``cache`` were handed out (the memory caches)
    allocated: Guarded[int] = Guarded(0, by="mmu_lock")

    def __init__(self, kvm: Kvm, vcpus: list[Vcpu], roots: int) -> None:
        super().__init__(f"{kvm.name}.tdp_mmu")
        self.mmu_lock: Lock = kvm.mmu_lock
        self.cache: tuple[KvmMmuPage, ...] = tuple(
            KvmMmuPage(f"{kvm.name}.root{i}", kvm) for i in range(roots))
        self.vcpu_mmu: dict[str, VcpuMmu] = {
            v.name: VcpuMmu(f"{v.name}.arch.mmu") for v in vcpus}

    def sptes(self) -> list[Spte]:
        """Every SPTE object of every root page (set-up facts; read with no step)."""
        return [sp for root in self.cache for sp in root.table]


def kvm_mmu_init_tdp_mmu(kvm: Kvm, vcpus: list[Vcpu], roots: int = 1) -> TdpMmu:
    """arch/x86/kvm/mmu/tdp_mmu.c v5.11 (set-up only): enable the TDP MMU for ``kvm``.

    ``roots`` root pages are made for the vCPUs to allocate (``kvm_tdp_mmu_get_vcpu_root_hpa``
    takes one per new root); the built-in checks then cover their SPTEs too."""
    if roots < 1:
        raise ValueError(f"kvm_mmu_init_tdp_mmu(roots={roots}): give at least 1 root page")
    if kvm.tdp_mmu is not None:
        raise ValueError(f"{kvm.name}: kvm_mmu_init_tdp_mmu was already called")
    tdp = TdpMmu(kvm, vcpus, roots)
    kvm.tdp_mmu = tdp
    return tdp


def tdp_mmu_of(kvm: Kvm) -> TdpMmu:
    """``kvm->arch``'s TDP MMU part; an error that says what to do if it is not enabled."""
    tdp: Any = kvm.tdp_mmu
    if not isinstance(tdp, TdpMmu):
        raise RuntimeError(f"{kvm.name} has no TDP MMU: call kvm_mmu_init_tdp_mmu(kvm, vcpus) "
                           "in the scenario's set-up")
    return tdp
