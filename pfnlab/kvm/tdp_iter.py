"""arch/x86/kvm/mmu/tdp_iter.c v5.16: the pre-order walk of a TDP MMU root's SPTEs.

A :class:`TdpIter` is the walker's own state (``struct tdp_iter``, on its stack): where it
is (``gfn``, ``level``, ``sptep``, the value read there in ``old_spte``) and where the
walk goes on from after a yield (``next_last_level_gfn``). Every position is computed
from the root's page table (``root.spt``), read under ``mmu_lock``: starting, restarting
and stepping all touch the root, so a walk on a freed root is a use after free.

The walk visits a huge-aligned block's level-2 SPTE and then its 4K SPTEs, block after
block (the model has no non-leaf SPTEs: the 4K level is always there to step down to).
After a yield (:func:`~pfnlab.kvm.tdp_zap.tdp_mmu_iter_cond_resched` sets ``yielded``) the
next step restarts from the root at ``next_last_level_gfn`` instead of advancing, as
3a0f64de479c (v5.16) made it: advancing skipped the SPTE the walk resumed at.
"""

from __future__ import annotations

from dataclasses import dataclass

from pfnlab.kvm.kvm import PT_PAGE_TABLE_LEVEL, Spte, SpteVal
from pfnlab.kvm.mmu_page import KvmMmuPage


@dataclass
class TdpIter:
    """``struct tdp_iter`` (arch/x86/kvm/mmu/tdp_iter.h v5.16): the walker's position."""

    root: KvmMmuPage
    min_level: int = PT_PAGE_TABLE_LEVEL
    root_level: int = PT_PAGE_TABLE_LEVEL
    #: the gfn the walk translates next at the last level (where a restart resumes)
    next_last_level_gfn: int = 0
    #: ``next_last_level_gfn`` at the last restart: a yield needs progress since
    yielded_gfn: int = 0
    gfn: int = 0
    level: int = PT_PAGE_TABLE_LEVEL
    #: the SPTE at the position (None: no entry, e.g. a gfn in no memslot)
    sptep: Spte | None = None
    #: the value read at ``sptep`` when the walk got there
    old_spte: SpteVal | None = None
    valid: bool = False
    #: the walker dropped mmu_lock since the last step: the next one restarts from the root
    yielded: bool = False


def pages_per_level(it: TdpIter, level: int) -> int:
    """``KVM_PAGES_PER_HPAGE(level)`` of the walked root's VM."""
    return 1 if level == PT_PAGE_TABLE_LEVEL else it.root.hpage_pages


def round_gfn_for_level(it: TdpIter, gfn: int, level: int) -> int:
    """``gfn_round_for_level`` (tdp_iter.c v5.16): ``gfn`` aligned down to ``level``."""
    return gfn & -pages_per_level(it, level)


def tdp_iter_refresh_sptep(it: TdpIter) -> None:
    """arch/x86/kvm/mmu/tdp_iter.c v5.16: find the SPTE at (gfn, level) and read it."""
    table = it.root.spt  # pt_path[level - 1]: the root's page table (touches the root)
    pos = it.root.index.get((it.level, it.gfn))
    it.sptep = table[pos] if pos is not None and pos < len(table) else None
    it.old_spte = it.sptep.spte if it.sptep is not None else None


def tdp_iter_restart(it: TdpIter) -> None:
    """arch/x86/kvm/mmu/tdp_iter.c v5.16: back to the root, at ``next_last_level_gfn``."""
    it.yielded = False
    it.yielded_gfn = it.next_last_level_gfn
    it.level = it.root_level
    it.gfn = round_gfn_for_level(it, it.next_last_level_gfn, it.level)
    tdp_iter_refresh_sptep(it)
    it.valid = True


def tdp_iter_start(it: TdpIter, root: KvmMmuPage, min_level: int,
                   next_last_level_gfn: int) -> None:
    """arch/x86/kvm/mmu/tdp_iter.c v5.16: walk ``root`` from ``next_last_level_gfn`` down."""
    it.root = root
    it.root_level = root.root_level
    it.min_level = min_level
    it.next_last_level_gfn = next_last_level_gfn
    tdp_iter_restart(it)


def try_step_down(it: TdpIter) -> bool:
    """arch/x86/kvm/mmu/tdp_iter.c v5.16: one level down, towards ``next_last_level_gfn``."""
    if it.level == it.min_level:
        return False
    it.level -= 1
    it.gfn = round_gfn_for_level(it, it.next_last_level_gfn, it.level)
    tdp_iter_refresh_sptep(it)
    return True


def try_step_side(it: TdpIter) -> bool:
    """arch/x86/kvm/mmu/tdp_iter.c v5.16: the next entry of this page table, if any."""
    step = pages_per_level(it, it.level)
    nxt = it.gfn + step
    if it.level < it.root_level:  # the last entry of a child table: step up instead
        parent = pages_per_level(it, it.level + 1)
        if nxt % parent == 0:
            return False
    elif nxt >= it.root.max_gfn:  # the root table's last entry
        return False
    it.gfn = nxt
    it.next_last_level_gfn = nxt
    tdp_iter_refresh_sptep(it)
    return True


def try_step_up(it: TdpIter) -> bool:
    """arch/x86/kvm/mmu/tdp_iter.c v5.16: back to the parent table's entry."""
    if it.level == it.root_level:
        return False
    it.level += 1
    it.gfn = round_gfn_for_level(it, it.gfn, it.level)
    tdp_iter_refresh_sptep(it)
    return True


def tdp_iter_next(it: TdpIter) -> None:
    """arch/x86/kvm/mmu/tdp_iter.c v5.16: the next SPTE in pre-order (after a yield, the
    walk restarts from the root instead: 3a0f64de479c)."""
    if it.yielded:
        tdp_iter_restart(it)
        return
    if try_step_down(it):
        return
    while True:
        if try_step_side(it):
            return
        if not try_step_up(it):
            break
    it.valid = False
