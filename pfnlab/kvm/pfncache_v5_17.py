"""virt/kvm/pfncache.c v5.17: the first ``gfn_to_pfn_cache`` refresh, which keeps a page
reference (982ed0de4753 "KVM: Reinstate gfn_to_pfn_cache with invalidation support").

Its shape, as the v6.0 rework (``pfncache_refresh.py``) found it:

- the refresh marks the cache valid with the placeholder pfn ``KVM_PFN_ERR_FAULT`` before
  it drops ``gpc->lock``, and ``gfn_to_pfn_cache_invalidate_start`` skips a cache whose pfn
  is an error: an invalidation during the lookup leaves the placeholder valid;
- its retry check (``hva_to_pfn_retry``, inlined here: the name is v6.0's) is
  ``mmu_notifier_retry_hva`` outside ``gpc->lock``, and reads ``mmu_notifier_count``,
  which the notifier raises only after it invalidated the caches: an invalidation that
  runs between the check and the publish goes unseen, and the stale pfn is published
  valid;
- a retried lookup does not put the reference of the pfn it discards;
- the cache holds the reference of its pfn, put by the next refresh only if the pfn
  changed; a refresh that finds the same pfn again (after an invalidation that did not
  move the page) keeps two references and puts one ("KVM: Put the extra pfn reference when
  reusing a pfn in the gpc cache" fixed that).

The ``kvm`` argument is kept, as in v5.17; there is no refresh mutex yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pfnlab.explore import wait_until
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kernel.roles import releases_reference
from pfnlab.kvm.hva import EFAULT, gfn_to_memslot
from pfnlab.kvm.pfn import is_error_noslot_pfn, kvm_release_pfn
from pfnlab.kvm.pfncache import PfnCache
from pfnlab.kvm.pfncache_refresh import gpc_lookup

if TYPE_CHECKING:
    from pfnlab.kvm.kvm import Kvm


def mmu_notifier_retry_hva(kvm: Kvm, mmu_seq: int, hva: int) -> bool:
    """include/linux/kvm_host.h v5.17 (under ``mmu_lock`` for read): True (retry) if an
    invalidation is in progress or one ended since ``mmu_seq`` was read (the hva range of
    the in-progress one is not modelled: any counts)."""
    return bool(kvm.mmu_notifier_count) or kvm.mmu_notifier_seq != mmu_seq


@kfunc
def kvm_gfn_to_pfn_cache_refresh(kvm: Kvm, gpc: PfnCache, gpa: int) -> int:
    """virt/kvm/pfncache.c v5.17: set ``gpa``/``uhva``; if the cache was invalid or its hva
    changed, publish the placeholder as valid, look up with the retry check outside the
    lock, publish the pfn (its reference kept by the cache) and release the old pfn unless
    it is the new one.

    Returns 0 on success, ``-EFAULT`` if ``gpa`` is in no memslot or maps no page."""
    gpc.lock.acquire()
    old_pfn = gpc.pfn
    old_uhva = gpc.uhva
    old_valid = gpc.valid
    if gpc.gpa != gpa or old_uhva is None:
        gpc.gpa = gpa
        slot = gfn_to_memslot(kvm.memslots, gpa)
        gpc.uhva = None if slot is None else slot.gfn_to_hva(gpa)
        if slot is None:
            gpc.pfn = None
            gpc.lock.release()
            return -EFAULT
    if old_valid and old_uhva == gpc.uhva:
        gpc.lock.release()  # already valid: nothing to look up, nothing to release
        return 0
    gpc.pfn = None          # placeholders for "hva is valid but not yet mapped"
    gpc.khva = None
    gpc.valid = True
    gpc.lock.release()
    while True:             # hva_to_pfn_retry
        mmu_seq = kvm.mmu_notifier_seq
        new_pfn = gpc_lookup(gpc)
        if is_error_noslot_pfn(new_pfn):
            break
        kvm.mmu_lock.acquire()
        retry = mmu_notifier_retry_hva(kvm, mmu_seq, gpc.hva)
        kvm.mmu_lock.release()
        if not retry:
            break           # a retry drops new_pfn without putting its reference
        # cond_resched(): the model waits for the invalidation to end (a lookup before
        # would be refused the same way; docs/reductions.md, section 7)
        wait_until(lambda: kvm.mmu_notifier_count == 0, what=f"{gpc.name} refresh retry")
    ret = 0
    if is_error_noslot_pfn(new_pfn):
        ret = -EFAULT
    elif new_pfn == old_pfn:
        old_pfn = None      # the old mapping is reused, and its reference kept: two now
    gpc.lock.acquire()
    if ret:
        gpc.valid = False
        gpc.pfn = None
        gpc.khva = None
    else:                   # "At this point, gpc->valid may already have been cleared"
        gpc.pfn = new_pfn
        gpc.khva = new_pfn
    gpc.lock.release()
    if old_pfn is not None:
        kvm_release_pfn(old_pfn, False)  # __release_gpc
    return ret


@releases_reference
@kfunc
def kvm_gfn_to_pfn_cache_unmap(kvm: Kvm, gpc: PfnCache) -> None:
    """virt/kvm/pfncache.c v5.17: invalid and no pfn under ``gpc->lock``, then release the
    old pfn's reference (``__release_gpc``); the gpa and hva stay."""
    gpc.lock.acquire()
    gpc.valid = False
    old_pfn = gpc.pfn
    gpc.khva = None
    gpc.pfn = None
    gpc.lock.release()
    if old_pfn is not None:
        kvm_release_pfn(old_pfn, False)


def kvm_gfn_to_pfn_cache_check(kvm: Kvm, gpc: PfnCache, gpa: int) -> bool:
    """virt/kvm/pfncache.c v5.17, called with ``gpc->lock`` held: whether the cache is for
    ``gpa``, has an hva, and is valid (no ``active`` test yet: true for the placeholder
    of a refresh in progress too)."""
    return bool(gpc.gpa == gpa and gpc.uhva is not None and gpc.valid)
