"""arch/x86/kvm/mmu/tdp_mmu.c v5.16: changing a root's SPTEs, and the walk that yields.

``tdp_mmu_set_spte`` writes an SPTE of a root (the ledger sees the write through the
SPTE's field, as it sees ``mmu_set_spte``'s) and ``handle_changed_spte`` propagates the
accessed/dirty bits of the old value to the page, as ``mmu_spte_clear_track_bits`` does
for the VM's own SPTEs. ``zap_gfn_range`` zaps a range of one root; when it may yield,
``tdp_mmu_iter_cond_resched`` drops ``mmu_lock`` once the walk made progress and the walk
restarts from the root (``tdp_iter_restart``): whoever walks a root across such a yield
needs a reference to it (``kvm_tdp_mmu_get_root``, :mod:`pfnlab.kvm.tdp_mmu`).

``need_resched() || rwlock_needbreak()`` is a scheduler decision: the model always yields
when the walk made progress, and the interleavings in which no other thread takes
``mmu_lock`` meanwhile are those in which the kernel would not have yielded. TLB flushes
are not modelled (``flush`` is returned as the kernel computes it). ``mmu_lock`` is held
for write (the exclusive ``shared == false`` paths).
"""

from __future__ import annotations

from pfnlab.explore import note
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kvm import ghost
from pfnlab.kvm.kvm import PT_PAGE_TABLE_LEVEL, Kvm, SpteVal
from pfnlab.kvm.mmu_page import KvmMmuPage
from pfnlab.kvm.pfn import kvm_set_pfn_accessed, kvm_set_pfn_dirty
from pfnlab.kvm.tdp_iter import TdpIter, tdp_iter_next, tdp_iter_start
from pfnlab.properties import NO_STALE_SPTE


@kfunc
def handle_changed_spte(kvm: Kvm, gfn: int, old: SpteVal | None, new: SpteVal | None,
                        level: int) -> None:
    """arch/x86/kvm/mmu/tdp_mmu.c v5.16: the bookkeeping of an SPTE change (A/D bits).

    A present leaf replaced by another pfn BUG()s in the kernel (a missing notifier zap):
    here a WARN of I4."""
    if old is None:
        return
    pfn_changed = new is None or new.pfn != old.pfn
    if new is not None and pfn_changed:
        ghost.warn("handle_changed_spte", old.pfn,
                   f"present leaf SPTE of gfn {gfn:#x} replaced by pfn {new.pfn:#x}",
                   violates=NO_STALE_SPTE)
    # handle_changed_spte_acc_track, then __handle_changed_spte's dirty propagation
    if old.accessed and (new is None or not new.accessed or pfn_changed):
        kvm_set_pfn_accessed(old.pfn)
    if old.dirty and (new is None or not new.dirty or pfn_changed):
        kvm_set_pfn_dirty(old.pfn)


@kfunc
def tdp_mmu_set_spte(kvm: Kvm, it: TdpIter, new: SpteVal | None) -> None:
    """arch/x86/kvm/mmu/tdp_mmu.c v5.16: write the SPTE at the walk's position (mmu_lock
    held for write), then ``handle_changed_spte`` from the value the walk read there."""
    sptep = it.sptep
    if sptep is None:
        raise RuntimeError(f"tdp_mmu_set_spte at gfn {it.gfn:#x} level {it.level}: the "
                           f"root {it.root.name} has no SPTE there (a gfn in no memslot)")
    sptep.spte = new
    handle_changed_spte(kvm, it.gfn, it.old_spte, new, it.level)


@kfunc
def tdp_mmu_iter_cond_resched(kvm: Kvm, it: TdpIter, flush: bool) -> bool:
    """arch/x86/kvm/mmu/tdp_mmu.c v5.16: once the walk made progress since its last
    restart (ed5e484b79e8), drop and retake ``mmu_lock``; the walk's next step restarts
    from the root (``yielded``, 3a0f64de479c). Returns whether it yielded."""
    if it.next_last_level_gfn == it.yielded_gfn:
        return False
    note(f"yields mmu_lock walking {it.root.name} at gfn {it.next_last_level_gfn:#x}")
    kvm.mmu_lock.release()  # cond_resched_rwlock_write (rcu_read_unlock before)
    kvm.mmu_lock.acquire()
    it.yielded = True
    return True


@kfunc
def zap_gfn_range(kvm: Kvm, root: KvmMmuPage, start: int, end: int, can_yield: bool,
                  flush: bool) -> bool:
    """arch/x86/kvm/mmu/tdp_mmu.c v5.16: zap the SPTEs of ``root`` mapping [start, end),
    yielding ``mmu_lock`` if ``can_yield``. Returns whether a TLB flush is still needed.

    Every present SPTE of the model is a leaf, so none is skipped for covering more than
    the range (the kernel skips only non-leaf ones), and the walk always goes down to 4K
    (v5.16's ``zap_all`` shortcut recurses through non-leaf SPTEs instead)."""
    it = TdpIter(root)
    tdp_iter_start(it, root, PT_PAGE_TABLE_LEVEL, start)
    while it.valid and it.gfn < end:  # for_each_tdp_pte_min_level
        if can_yield and tdp_mmu_iter_cond_resched(kvm, it, flush):
            flush = False
        elif it.old_spte is not None:
            tdp_mmu_set_spte(kvm, it, None)
            flush = True
        tdp_iter_next(it)
    return flush
