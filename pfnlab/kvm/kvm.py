"""KVM's per-VM state: memslots, SPTEs (each its own rmap), mmu_lock and the notifier seq/count.

Model choices (the kernel objects they stand for in brackets):

- :class:`Memslot` is immutable (``struct kvm_memory_slot``); ``Kvm.memslots`` is a shared
  field holding the tuple of slots, so publishing new memslots (dirty logging off) is one
  write and a fault reads the slots once (``kvm_vcpu_gfn_to_memslot``).
- ``lpage_info`` disallow state is a pure function of the slot (misaligned head/tail, or
  ``base_gfn`` and ``userspace_addr`` misaligned, as ``kvm_arch_create_memslot`` sets it);
  write tracking for shadow paging is not modelled (TDP only).
- There is one :class:`Spte` object per (level, gfn-aligned-to-level): level 1 for every gfn
  of every slot and level 2 for every huge-aligned gfn. Its one field ``spte`` is the 64-bit
  SPTE (:class:`SpteVal` or ``None``), read and written whole as the kernel does. Since an
  object stands for exactly one SPTE of one gfn/level, it is its own rmap entry: a present
  level-L SPTE is "in the rmap" of its gfn at level L. A huge SPTE installed over 4K SPTEs
  leaves them present (the kernel unlinks the child page table; its SPTEs stay in the rmaps
  and are zapped by notifiers exactly like these); a 4K install under a huge SPTE first
  drops the huge one (``drop_large_spte``).
- Huge means ``hpage_pages`` pages (level 2 only; 1G is not modelled). Scenarios pick it
  to match the host model's huge page size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from pfnlab.explore import Field, Ghost, Guarded, Lock, Shared, Stable
from pfnlab.kernel.ordering import orders
from pfnlab.kvm.ghost.ledger import KvmLedger, tadd
from pfnlab.kvm.sptefield import SpteField

PT_PAGE_TABLE_LEVEL = 1
PT_DIRECTORY_LEVEL = 2


@dataclass(frozen=True)
class Memslot:
    """A memslot: gfns ``[base_gfn, base_gfn + npages)`` at hvas from ``userspace_addr``."""

    id: int
    base_gfn: int
    npages: int
    userspace_addr: int
    readonly: bool = False
    dirty_logging: bool = False

    def contains(self, gfn: int) -> bool:
        """Whether ``gfn`` is in this slot."""
        return self.base_gfn <= gfn < self.base_gfn + self.npages

    def gfn_to_hva(self, gfn: int) -> int:
        """``__gfn_to_hva_memslot``."""
        return self.userspace_addr + (gfn - self.base_gfn)

    def hva_range_to_gfns(self, start: int, end: int) -> range:
        """The gfns whose hva is in ``[start, end)`` (``hva_to_gfn_memslot`` on the overlap)."""
        lo = max(start, self.userspace_addr)
        hi = min(end, self.userspace_addr + self.npages)
        if lo >= hi:
            return range(0)
        off = self.base_gfn - self.userspace_addr
        return range(lo + off, hi + off)

    def lpage_disallowed(self, gfn: int, hpage_pages: int) -> bool:
        """``__mmu_gfn_lpage_is_disallowed`` at level 2 (from ``kvm_arch_create_memslot``)."""
        mask = hpage_pages - 1
        base = gfn & ~mask
        if base < self.base_gfn or base + hpage_pages > self.base_gfn + self.npages:
            return True
        return bool((self.base_gfn ^ self.userspace_addr) & mask)


class SpteVal(NamedTuple):
    """The bits of a present SPTE that matter here."""

    pfn: int
    writable: bool
    accessed: bool
    dirty: bool


class Spte(Shared):
    """One SPTE (and its rmap entry) for ``gfn`` at ``level``; ``spte`` is None if not present."""

    # every access holds mmu_lock (checked at each one): part of the critical section's step
    spte: Guarded[SpteVal | None] = SpteField(None, by="mmu_lock")
    #: ledger: ``(owner, ((hva, epoch), ...))`` of the installed value (ghost/origins.py)
    origin: Ghost[tuple[str, tuple[tuple[int, int], ...]] | None] = Ghost(None)

    def __init__(self, name: str, level: int, gfn: int, slot_id: int,
                 ledger_hooks: LedgerHooks) -> None:
        super().__init__(name)
        self.mmu_lock: Lock | None = None  # the guard of ``spte`` (the VM's mmu_lock)
        self.level = level
        self.gfn = gfn
        self.slot_id = slot_id
        #: the VM's ledger hooks; ``spte_written`` sees every write of ``spte`` (sptefield.py)
        self.ledger_hooks = ledger_hooks


def _no_spte_hook(sp: Spte, old: SpteVal | None, new: SpteVal | None) -> None:
    pass


def _no_vm_hook(kvm: Kvm) -> None:
    pass


@dataclass
class LedgerHooks:
    """What the VM's ledger follows in the VM itself (the host's primitives have their own
    hooks): every write of an SPTE, and every return of an ``invalidate_range_start``.
    Filled in at set-up by :func:`pfnlab.kvm.ghost.watch_vm`; shared by the VM's SPTEs."""

    spte_written: Callable[[Spte, SpteVal | None, SpteVal | None], None] = _no_spte_hook
    invalidation_returned: Callable[[Kvm], None] = _no_vm_hook


@dataclass(frozen=True)
class MmuNotifierOps:
    """``struct mmu_notifier_ops`` as KVM fills it (``kvm_mmu_notifier_ops``, kvm_main.c):
    the callbacks :class:`Kvm`, the subscriber, calls (set by ``kvm_init_mmu_notifier``)."""

    invalidate_range_start: Callable[[Kvm, int, int], None]
    invalidate_range_end: Callable[[Kvm, int, int], None]
    invalidate_range: Callable[[Kvm, int, int], None]
    release: Callable[[Kvm], None]
    change_pte: Callable[[Kvm, int, Any], None]


class Vcpu:
    """A vCPU: a name (used for reference owners) and its VM. Immutable."""

    def __init__(self, kvm: Kvm, name: str) -> None:
        self.kvm = kvm
        self.name = name

    def __repr__(self) -> str:
        return self.name


class Kvm(Shared):
    """``struct kvm``: the fields other threads change, plus immutable set-up facts.

    ``users_count`` is the VM's reference count (``kvm_get_kvm``/``kvm_put_kvm``): the VM
    file holds one and each vCPU file one; the last put runs ``kvm_destroy_vm``.
    """

    # written under mmu_lock only (checked); read locklessly by the fault (mmu_seq snapshot)
    # and by the retry wait, so writes stay steps and locked reads join the critical section
    mmu_notifier_seq: Guarded[int] = Guarded(0, by="mmu_lock", lockless_reads=True)
    mmu_notifier_count: Guarded[int] = Guarded(0, by="mmu_lock", lockless_reads=True)
    # __ro_after_init: promoted to steps (stable.py) where a scenario publishes new ones or
    # the VM is freed while threads run (no thread's own pin on the VM is modelled)
    memslots: Stable[tuple[Memslot, ...]] = Stable(())
    users_count: Field[int] = Field(1)
    #: v5.13+ (kvm_main.c, 52ac8b358b0c): invalidations between their ``range_start`` and
    #: ``range_end``, raised before the pfn caches are invalidated (pfncache_notifier.py;
    #: v5.4 has none: unused by the base model)
    mn_active_invalidate_count: Field[int] = Field(0)

    def __init__(
        self,
        name: str,
        *,
        mm: Any,
        memslots: Iterable[Memslot],
        hpage_pages: int = 2,
        users: int = 1,
    ) -> None:
        super().__init__(name)
        self.mm = mm
        self.hpage_pages = hpage_pages
        self.mmu_lock = Lock(f"{name}.mmu_lock")
        self.ledger = KvmLedger(f"{name}.ledger")
        slots = tuple(memslots)
        self.memslots = slots
        self.users_count = users
        #: head pfns legitimately at refcount 0 (non-refcounted pages; exempt from I5)
        self.norefs: frozenset[int] = frozenset()
        self.sptes: dict[tuple[int, int], Spte] = {}
        #: the reference-less mappings of guest pages (pfncache.PfnCache; set-up only)
        self.pfn_caches: list[Any] = []
        #: what the ledger follows in this VM (SPTE writes, invalidation returns)
        self.ledger_hooks = LedgerHooks()
        #: ``kvm->mmu_notifier.ops`` (``kvm_init_mmu_notifier``, notifier.py)
        self.mmu_notifier_ops: MmuNotifierOps | None = None
        #: the TDP MMU's roots (mmu_page.TdpMmu); None unless kvm_mmu_init_tdp_mmu ran
        self.tdp_mmu: Any = None
        for slot in slots:
            for gfn in range(slot.base_gfn, slot.base_gfn + slot.npages):
                self._spte(PT_PAGE_TABLE_LEVEL, gfn, slot)
                if hpage_pages > 1 and gfn % hpage_pages == 0:
                    self._spte(PT_DIRECTORY_LEVEL, gfn, slot)

    def _spte(self, level: int, gfn: int, slot: Memslot) -> None:
        name = f"{self.name}.spte{'' if level == 1 else '2M'}[{gfn:#x}]"
        sp = self.sptes[(level, gfn)] = Spte(name, level, gfn, slot.id, self.ledger_hooks)
        sp.mmu_lock = self.mmu_lock  # its guard

    # -------------------------------------------------------------- pure helpers
    def pages_per_hpage(self, level: int) -> int:
        """``KVM_PAGES_PER_HPAGE(level)``."""
        return 1 if level == PT_PAGE_TABLE_LEVEL else self.hpage_pages

    def spte_of(self, level: int, gfn: int) -> Spte | None:
        """The SPTE object mapping ``gfn`` at ``level`` (gfn aligned down), if any."""
        mask = self.pages_per_hpage(level) - 1
        return self.sptes.get((level, gfn & ~mask))

    def all_sptes(self) -> list[Spte]:
        """Every SPTE object of the VM: its own and those of its TDP MMU root pages (the
        ledger's hooks and checks read them all)."""
        own = list(self.sptes.values())
        return own if self.tdp_mmu is None else own + self.tdp_mmu.sptes()

    def slot_sptes(self, slot: Memslot, level: int) -> list[Spte]:
        """The SPTE objects of ``slot`` at ``level`` (the slot's rmap array), in gfn order."""
        return [
            s for (lv, _), s in sorted(self.sptes.items()) if lv == level and s.slot_id == slot.id
        ]

    # -------------------------------------------------------------- mmu_notifier subscriber
    def _ops(self) -> MmuNotifierOps:
        ops = self.mmu_notifier_ops
        if ops is None:
            raise RuntimeError(f"{self.name} has no mmu_notifier ops: create VMs with "
                               "create_vm (kvm_init_mmu_notifier sets them)")
        return ops

    def invalidate_range_start(self, mm: Any, start: int, end: int) -> None:
        """mm → KVM: ``mmu_notifier_invalidate_range_start`` for hvas ``[start, end)``."""
        led = self.ledger
        ep, act, br, ch = led.epoch, led.inval_active, led.bracket, led.changing
        for h in range(start, end):
            ep = tadd(ep, h, 1)
            act = tadd(act, h, 1)
            br = tadd(br, h, 1)
            ch = tadd(ch, h, 1)
        led.epoch, led.inval_active, led.bracket, led.changing = ep, act, br, ch
        led.notifier_starts = led.notifier_starts + 1
        self._ops().invalidate_range_start(self, start, end)
        act = led.inval_active
        for h in range(start, end):
            act = tadd(act, h, -1)
        led.inval_active = act
        self.ledger_hooks.invalidation_returned(self)

    def invalidate_range_end(self, mm: Any, start: int, end: int) -> None:
        """mm → KVM: ``mmu_notifier_invalidate_range_end``."""
        led = self.ledger
        led.notifier_ends = led.notifier_ends + 1
        ch = led.changing
        for h in range(start, end):
            ch = tadd(ch, h, -1)
        led.changing = ch  # the primary MMU has changed its entries: it calls the end
        self._ops().invalidate_range_end(self, start, end)
        br = led.bracket
        for h in range(start, end):
            br = tadd(br, h, -1)
        led.bracket = br

    def invalidate_range(self, mm: Any, start: int, end: int) -> None:
        """mm → KVM: ``->invalidate_range`` (after the PTEs changed, before the end)."""
        self._ops().invalidate_range(self, start, end)

    def release(self, mm: Any) -> None:
        """mm → KVM: ``mmu_notifier_release`` (exit_mmap or unregister)."""
        self._ops().release(self)

    def change_pte(self, mm: Any, hva: int, val: Any) -> None:
        """mm → KVM: ``->change_pte`` (``set_pte_at_notify``: ``hva`` gets PTE ``val``)."""
        self._ops().change_pte(self, hva, val)


orders(Kvm, "mmu_notifier_seq", "mmu_notifier_count", primitive="mmu_notifier_retry()",
       how="the fault reads kvm->mmu_notifier_seq before it resolves the pfn and, under "
           "kvm->mmu_lock, calls mmu_notifier_retry() before it installs the spte; an "
           "invalidation that ran in between (mmu_notifier_count raised, or the sequence "
           "moved on) makes it drop the pfn and retry the fault, so the spte is refreshed "
           "from the invalidation rather than serialised with it by a lock",
       where="arch/x86/kvm/mmu.c (tdp_page_fault) and include/linux/kvm_host.h "
             "(mmu_notifier_retry), v5.4; mmu_invalidate_retry() in later kernels")


def check_gfn(kvm: Kvm, gfn: int) -> None:
    """Set-up check: ``gfn`` is in some memslot of ``kvm``. A fault outside every memslot
    does nothing a property could see, so a check of it would pass vacuously."""
    slots = kvm.__dict__["memslots"]
    if not any(sl.contains(gfn) for sl in slots):
        where = ", ".join(f"slot {sl.id}: gfns {sl.base_gfn:#x}-{sl.base_gfn + sl.npages - 1:#x}"
                          for sl in slots) or "none"
        raise ValueError(f"gfn {gfn:#x} is in no memslot ({where}); vm_on places each "
                         "region's slot at the next huge-aligned gfn unless given gfns=[...]")
