"""arch/x86/kvm/mmu.c v5.4.33: installing and zapping SPTEs, with accessed/dirty propagation.

All of these run with ``kvm->mmu_lock`` held. Clearing an SPTE is one atomic exchange
(``__update_clear_spte_slow``); the kernel uses a plain store when the SPTE has no volatile
bits, which is the same step here because nothing else writes SPTEs without mmu_lock in
this model (no fast_page_fault, no hardware A/D updates).
"""

from __future__ import annotations

from typing import Any

from pfnlab import mm
from pfnlab.explore import atomic
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kvm import ghost
from pfnlab.kvm.kvm import PT_PAGE_TABLE_LEVEL, Kvm, Spte, SpteVal
from pfnlab.kvm.pfn import kvm_is_reserved_pfn, kvm_set_pfn_accessed, kvm_set_pfn_dirty


@kfunc
def mmu_spte_clear_track_bits(kvm: Kvm, sptep: Spte) -> bool:
    """arch/x86/kvm/mmu.c v5.4: clear the SPTE; WARN on a zero page_count; propagate A/D."""
    old: SpteVal | None = atomic(sptep, "spte", lambda v: (None, v))
    if old is None:
        return False
    pfn = old.pfn
    # KVM does not hold the refcount of the page used by kvm mmu, before reclaiming the
    # page, we should unmap it from mmu first.
    if not kvm_is_reserved_pfn(pfn) and not mm.page_count(mm.pfn_to_page(pfn)):
        ghost.warn("mmu_spte_clear_track_bits", pfn, "zapping an SPTE of a page with count 0",
                   violates=ghost.NO_SPTE_TO_FREED)
    if old.accessed:
        kvm_set_pfn_accessed(pfn)
    if old.dirty:
        kvm_set_pfn_dirty(pfn)
    return True


@kfunc
def mmu_spte_update(kvm: Kvm, sptep: Spte, new: SpteVal) -> bool:
    """arch/x86/kvm/mmu.c v5.4: update a present SPTE; propagate A/D bits the update clears."""
    old: SpteVal | None = atomic(sptep, "spte", lambda v: (new, v))
    if old is None:
        return False
    if old.accessed and not new.accessed:
        kvm_set_pfn_accessed(old.pfn)
    if old.dirty and not new.dirty:
        kvm_set_pfn_dirty(old.pfn)
    return old.writable and not new.writable


@kfunc
def drop_spte(kvm: Kvm, sptep: Spte) -> None:
    """arch/x86/kvm/mmu.c v5.4: mmu_spte_clear_track_bits, then rmap_remove if it was present."""
    mmu_spte_clear_track_bits(kvm, sptep)


@kfunc
def kvm_zap_rmapp(kvm: Kvm, sptep: Spte) -> bool:
    """arch/x86/kvm/mmu.c v5.4: pte_list_remove every SPTE of an rmap head (here: one)."""
    return bool(mmu_spte_clear_track_bits(kvm, sptep))


@kfunc
def kvm_unmap_hva_range(kvm: Kvm, start: int, end: int) -> bool:
    """arch/x86/kvm/mmu.c v5.4: kvm_handle_hva_range(kvm_unmap_rmapp) over every level."""
    flush = False
    for slot in kvm.memslots:
        gfns = slot.hva_range_to_gfns(start, end)
        if not gfns:
            continue
        for level in (PT_PAGE_TABLE_LEVEL, 2):
            n = kvm.pages_per_hpage(level)
            if level > PT_PAGE_TABLE_LEVEL and n <= 1:
                continue
            first = gfns.start & ~(n - 1)
            for gfn in range(first, gfns.stop, n):
                sp = kvm.sptes.get((level, gfn))
                if sp is not None and sp.slot_id == slot.id:
                    flush |= kvm_zap_rmapp(kvm, sp)
    return flush


@kfunc
def kvm_set_spte_hva(kvm: Kvm, hva: int, val: Any) -> bool:
    """arch/x86/kvm/mmu.c v5.4 (kvm_set_pte_rmapp on the 4K rmap of ``hva``'s gfns): a
    present SPTE is dropped if the new host PTE ``val`` is writable, else switched to its
    pfn read-only. Returns whether a TLB flush is needed."""
    flush = False
    for slot in kvm.memslots:
        for gfn in slot.hva_range_to_gfns(hva, hva + 1):
            sp = kvm.sptes.get((PT_PAGE_TABLE_LEVEL, gfn))
            if sp is None or sp.slot_id != slot.id or sp.spte is None:
                continue
            flush = True
            if val.write:
                drop_spte(kvm, sp)
            else:
                mmu_spte_clear_track_bits(kvm, sp)
                mmu_spte_update(kvm, sp, SpteVal(val.pfn, False, False, False))
    return flush


@kfunc
def mmu_set_spte(
    kvm: Kvm,
    sptep: Spte,
    write_fault: bool,
    pfn: int,
    speculative: bool,
    host_writable: bool,
) -> int:
    """arch/x86/kvm/mmu.c v5.4: drop a present SPTE of another pfn, then set_spte.

    set_spte: A is set unless speculative; W (and D, set with it) iff host_writable.
    Returns 0 (RET_PF_RETRY for a write-protected gfn is not modelled).
    """
    old = sptep.spte
    was_rmapped = False
    if old is not None:
        if old.pfn != pfn:
            drop_spte(kvm, sptep)
        else:
            was_rmapped = True
    new = SpteVal(pfn=pfn, writable=host_writable, accessed=not speculative, dirty=host_writable)
    if was_rmapped:
        mmu_spte_update(kvm, sptep, new)
    else:
        sptep.spte = new
    return 0


@kfunc
def kvm_mmu_zap_all(kvm: Kvm) -> None:
    """arch/x86/kvm/mmu.c v5.4: zap every shadow page under mmu_lock (leaf SPTEs: drop_spte)."""
    kvm.mmu_lock.acquire()
    for _, sp in sorted(kvm.sptes.items()):
        drop_spte(kvm, sp)
    kvm.mmu_lock.release()
