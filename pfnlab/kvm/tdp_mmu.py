"""arch/x86/kvm/mmu/tdp_mmu.c v5.16: TDP MMU roots (get, put, iterate), zapping, mapping.

The kernel's history this follows (the bug shapes a model of an older design restores):

- a889ea54b3da (v5.11) "Ensure TDP MMU roots are freed after yield": v5.10's
  ``kvm_mmu_put_root`` dropped the count without freeing the root; the put now frees it,
  and the root iterator that may yield (``for_each_tdp_mmu_root_yield_safe``) takes a
  reference on each root before the body and puts it after (``tdp_mmu_next_root``);
- 1af4a96025b3 / ed5e484b79e8 (v5.12) yield in the iterator even if no SPTE changed, once
  the walk made progress (:func:`~pfnlab.kvm.tdp_zap.tdp_mmu_iter_cond_resched`);
- e1eed5847b09 (v5.13) let the MMU notifier's unmap yield (``range->may_block``) but kept
  the iterator that takes no reference; 7533377215b6 (v5.16) "Use yield-safe TDP MMU root
  iter in MMU notifier unmapping" fixed it: without a reference the vCPU's
  ``kvm_mmu_unload`` could free the root while the unmap had yielded;
- 3a0f64de479c (v5.16): after a yield the walk restarts, it does not advance.

The roots are :class:`~pfnlab.kvm.mmu_page.KvmMmuPage` objects; see
:mod:`pfnlab.kvm.mmu_page` for the model choices (no RCU, no address spaces, no
``role.invalid``). Every function here runs with ``mmu_lock`` held for write unless it
says it takes it; the fields it writes check that (a ``lock-guard`` finding otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from pfnlab.explore import free
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kvm.fault import RET_PF_FIXED, record_huge_spte
from pfnlab.kvm.kvm import PT_PAGE_TABLE_LEVEL, Kvm, Memslot, SpteVal, Vcpu
from pfnlab.kvm.mmu_page import KvmMmuPage, tdp_mmu_of
from pfnlab.kvm.tdp_iter import TdpIter, tdp_iter_next, tdp_iter_start
from pfnlab.kvm.tdp_zap import tdp_mmu_set_spte, zap_gfn_range
from pfnlab.properties import NO_ROOT_AFTER_FREE


class KvmGfnRange(NamedTuple):
    """``struct kvm_gfn_range`` (include/linux/kvm_host.h v5.13+): gfns [start, end) of a
    slot, and whether the handler may yield (``mmu_notifier_range_blockable``)."""

    slot: Memslot
    start: int
    end: int
    may_block: bool


@kfunc
def kvm_tdp_mmu_get_root(kvm: Kvm, root: KvmMmuPage) -> bool:
    """arch/x86/kvm/mmu/tdp_mmu.h v5.13-v5.16: take a reference unless the count is 0
    (``refcount_inc_not_zero``; under mmu_lock here)."""
    count = root.tdp_mmu_root_count
    if count == 0:
        return False
    root.tdp_mmu_root_count = count + 1
    return True


@kfunc
def kvm_tdp_mmu_put_root(kvm: Kvm, root: KvmMmuPage) -> None:
    """arch/x86/kvm/mmu/tdp_mmu.c v5.13-v5.16 (v5.11: ``tdp_mmu_put_root`` then
    ``kvm_tdp_mmu_free_root``): drop a reference; the last one unlinks the root, zaps its
    SPTEs without yielding and frees it."""
    count = root.tdp_mmu_root_count - 1
    root.tdp_mmu_root_count = count
    if count > 0:
        return
    tdp = tdp_mmu_of(kvm)
    if tdp.tdp_mmu_roots is root:  # list_del_rcu(&root->link)
        tdp.tdp_mmu_roots = root.link
    else:
        prev = tdp.tdp_mmu_roots
        while prev is not None and prev.link is not root:
            prev = prev.link
        if prev is not None:
            prev.link = root.link
    zap_gfn_range(kvm, root, 0, root.max_gfn, False, False)
    free(root, (NO_ROOT_AFTER_FREE,
                f"{root.name} freed by kvm_tdp_mmu_put_root: tdp_mmu_root_count reached 0"))


@kfunc
def tdp_mmu_next_root(kvm: Kvm, prev_root: KvmMmuPage | None) -> KvmMmuPage | None:
    """arch/x86/kvm/mmu/tdp_mmu.c v5.13-v5.16: the next root after ``prev_root`` (the
    first if None) with a reference taken, then ``prev_root``'s reference put. Returns
    NULL at the end of the list."""
    nxt = prev_root.link if prev_root is not None else tdp_mmu_of(kvm).tdp_mmu_roots
    while nxt is not None and not kvm_tdp_mmu_get_root(kvm, nxt):
        nxt = nxt.link
    if prev_root is not None:
        kvm_tdp_mmu_put_root(kvm, prev_root)
    return nxt


def for_each_tdp_mmu_root_yield_safe(kvm: Kvm) -> Iterator[KvmMmuPage]:
    """The macro of tdp_mmu.c v5.11-v5.16: every root, each referenced while the loop body
    runs (``tdp_mmu_next_root``), so the body may yield ``mmu_lock``."""
    root = tdp_mmu_next_root(kvm, None)
    while root is not None:
        yield root
        root = tdp_mmu_next_root(kvm, root)


def for_each_tdp_mmu_root(kvm: Kvm) -> Iterator[KvmMmuPage]:
    """The macro of tdp_mmu.c v5.10-v5.16 (``list_for_each_entry``): every root, with no
    reference taken; the body must not yield ``mmu_lock``."""
    root = tdp_mmu_of(kvm).tdp_mmu_roots
    while root is not None:
        yield root
        root = root.link


@kfunc
def __kvm_tdp_mmu_zap_gfn_range(kvm: Kvm, start: int, end: int, can_yield: bool,
                                flush: bool) -> bool:
    """arch/x86/kvm/mmu/tdp_mmu.c v5.16: ``zap_gfn_range`` on every root, each referenced
    across the zap. Returns whether a TLB flush is still needed."""
    for root in for_each_tdp_mmu_root_yield_safe(kvm):
        flush = zap_gfn_range(kvm, root, start, end, can_yield, flush)
    return flush


@kfunc
def kvm_tdp_mmu_zap_all(kvm: Kvm) -> None:
    """arch/x86/kvm/mmu/tdp_mmu.c v5.16: zap every SPTE of every root, yielding
    (``kvm_mmu_zap_all`` holds mmu_lock around it)."""
    __kvm_tdp_mmu_zap_gfn_range(kvm, 0, max_gfn(kvm), True, False)


def max_gfn(kvm: Kvm) -> int:
    """One past the highest gfn any root maps (the kernel zaps up to ``-1ull``)."""
    return max((r.max_gfn for r in tdp_mmu_of(kvm).cache), default=0)


@kfunc
def kvm_tdp_mmu_unmap_gfn_range(kvm: Kvm, range: KvmGfnRange, flush: bool) -> bool:
    """arch/x86/kvm/mmu/tdp_mmu.c v5.16 (7533377215b6; the shared zap helper of "Use
    common TDP MMU zap helper for MMU notifier unmap hook"): the MMU notifier's unmap,
    through the root iterator that takes references, yielding if ``range.may_block``.
    Returns whether a TLB flush is still needed."""
    return __kvm_tdp_mmu_zap_gfn_range(kvm, range.start, range.end, range.may_block, flush)


@kfunc
def kvm_unmap_gfn_range(kvm: Kvm, range: KvmGfnRange) -> bool:
    """arch/x86/kvm/mmu/mmu.c v5.13-v5.16: the TDP MMU part of the notifier's unmap (the
    shadow MMU's rmap walk is :func:`~pfnlab.kvm.spte.kvm_unmap_hva_range`). Returns
    whether a TLB flush is needed."""
    return kvm_tdp_mmu_unmap_gfn_range(kvm, range, False)


@kfunc
def kvm_tdp_mmu_get_vcpu_root_hpa(vcpu: Vcpu) -> KvmMmuPage:
    """arch/x86/kvm/mmu/tdp_mmu.c v5.16: a referenced root for ``vcpu``: an existing one,
    else a new one (count 1) from the memory caches, added to ``tdp_mmu_roots``."""
    kvm = vcpu.kvm
    tdp = tdp_mmu_of(kvm)
    for root in for_each_tdp_mmu_root(kvm):  # every root has the vCPU's role here
        if kvm_tdp_mmu_get_root(kvm, root):
            return root
    i = tdp.allocated
    if i >= len(tdp.cache):
        raise RuntimeError(f"{vcpu.name} needs a new TDP MMU root and the {len(tdp.cache)} "
                           "root page(s) are used: give kvm_mmu_init_tdp_mmu(kvm, vcpus, "
                           f"roots={len(tdp.cache) + 1})")
    tdp.allocated = i + 1
    root = tdp.cache[i]
    root.spt = root.table  # tdp_mmu_alloc_sp: a cleared page table
    root.tdp_mmu_root_count = 1
    root.link = tdp.tdp_mmu_roots  # list_add
    tdp.tdp_mmu_roots = root
    return root


@kfunc
def kvm_mmu_load(vcpu: Vcpu) -> int:
    """arch/x86/kvm/mmu/mmu.c v5.16, the TDP MMU part (``mmu_alloc_direct_roots``): under
    mmu_lock, the vCPU's ``root_hpa`` becomes a referenced root. Returns 0."""
    kvm = vcpu.kvm
    mmu = tdp_mmu_of(kvm).vcpu_mmu[vcpu.name]
    kvm.mmu_lock.acquire()
    mmu.root_hpa = kvm_tdp_mmu_get_vcpu_root_hpa(vcpu)
    kvm.mmu_lock.release()
    return 0


@kfunc
def kvm_mmu_unload(vcpu: Vcpu) -> None:
    """arch/x86/kvm/mmu/mmu.c v5.16 (``kvm_mmu_free_roots``): under mmu_lock, put the
    vCPU's root (``mmu_free_root_page``); the last reference frees it."""
    kvm = vcpu.kvm
    mmu = tdp_mmu_of(kvm).vcpu_mmu[vcpu.name]
    root = mmu.root_hpa
    if root is None:
        return
    kvm.mmu_lock.acquire()
    kvm_tdp_mmu_put_root(kvm, root)
    mmu.root_hpa = None
    kvm.mmu_lock.release()


@kfunc
def kvm_tdp_mmu_map(vcpu: Vcpu, slot: Memslot, gfn: int, write: bool, map_writable: bool,
                    level: int, pfn: int) -> int:
    """arch/x86/kvm/mmu/tdp_mmu.c v5.10-v5.16: install the fault's SPTE in the vCPU's root
    (mmu_lock held), dropping a huge SPTE above a 4K target; the arguments of the model's
    ``__direct_map``, which a design on the TDP MMU overrides with it. Returns
    RET_PF_FIXED (RET_PF_SPURIOUS, an unchanged SPTE, is RET_PF_FIXED here)."""
    kvm = vcpu.kvm
    root = tdp_mmu_of(kvm).vcpu_mmu[vcpu.name].root_hpa
    if root is None:  # WARN_ON(!VALID_PAGE(root_hpa)): the vCPU enters with a root
        raise RuntimeError(f"{vcpu.name} faults through the TDP MMU with no root loaded: "
                           "call kvm_mmu_load(vcpu) in its thread before it faults")
    it = TdpIter(root)
    tdp_iter_start(it, root, PT_PAGE_TABLE_LEVEL, gfn)  # tdp_mmu_for_each_pte(gfn, gfn + 1)
    while it.valid and it.level != level:
        if it.old_spte is not None:  # a huge SPTE above a 4K target: zap it, walk down
            tdp_mmu_set_spte(kvm, it, None)
        tdp_iter_next(it)
    base = gfn & ~(kvm.pages_per_hpage(level) - 1)
    new = SpteVal(pfn=pfn, writable=map_writable, accessed=True, dirty=map_writable)
    if it.old_spte != new:  # tdp_mmu_map_handle_target_level (make_spte)
        record_huge_spte(kvm, slot, base, level, pfn)
        tdp_mmu_set_spte(kvm, it, new)
    return RET_PF_FIXED
