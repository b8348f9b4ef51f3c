"""virt/kvm/pfncache.c v6.0: the ``gfn_to_pfn_cache`` refresh that holds no page reference.

Sean Christopherson's rework (v6.0; 93984f19e7bc "KVM: Fully serialize gfn=>pfn cache
refresh via mutex", with "KVM: Fix race between mmu_notifier invalidation and pfncache
refresh" and "KVM: Do not pin pages tracked by gfn=>pfn caches" of the same series, posted
2022-04-29; the release it was merged in is UNVERIFIED, v5.19 or v6.0):

- a refresh holds ``gpc->refresh_lock`` from start to end, so refreshes are serialized;
- ``hva_to_pfn_retry`` marks the cache invalid before it drops ``gpc->lock``, looks the
  pfn up, retakes the lock and asks ``mmu_notifier_retry_cache`` under it: an invalidation
  that began (``kvm->mn_active_invalidate_count``, raised before the notifier invalidates
  the caches) or ended since the ``mmu_notifier_seq`` snapshot makes it release the pfn and
  look again;
- the published pfn holds no reference: the refresh puts the gup reference at once, and
  the MMU notifier's invalidation keeps the cache honest (I12).

The kernel retries after ``cond_resched()``; the model waits until no invalidation is
active before it looks again (a lookup before would be refused the same way: see
docs/reductions.md, section 7). Names are the v6.2 ones (``kvm_gpc_*``; v6.0 calls them
``kvm_gfn_to_pfn_cache_*`` with a ``kvm`` argument).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pfnlab.explore import wait_until
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kvm.hva import EFAULT, gfn_to_memslot, hva_to_pfn
from pfnlab.kvm.pfn import is_error_noslot_pfn, kvm_release_pfn_clean
from pfnlab.kvm.pfncache import PfnCache

if TYPE_CHECKING:
    from pfnlab.kvm.kvm import Kvm

#: ``-EINVAL``: the cache is not active
EINVAL = 22


def mmu_notifier_retry_cache(kvm: Kvm, mmu_seq: int) -> bool:
    """virt/kvm/pfncache.c v6.0: True (retry) if an invalidation is active
    (``mn_active_invalidate_count``) or one ended since ``mmu_seq`` was read."""
    if kvm.mn_active_invalidate_count:
        return True
    return kvm.mmu_notifier_seq != mmu_seq


def gpc_lookup(gpc: PfnCache) -> int:
    """``hva_to_pfn(gpc->uhva, ..., writable)``: the pfn at the cache's hva, with one page
    reference of the running operation (none on failure).

    Returns the pfn, or an error pfn (test with ``is_error_noslot_pfn``)."""
    uhva = gpc.uhva
    if uhva is None:
        return hva_to_pfn(gpc.hva, False, False, True)[0]
    return hva_to_pfn(uhva, False, False, True)[0]


@kfunc
def hva_to_pfn_retry(gpc: PfnCache) -> int:
    """virt/kvm/pfncache.c v6.0: called and returning with ``gpc->lock`` held (and the
    refresh mutex): invalidate, look up outside the lock, publish only if
    ``mmu_notifier_retry_cache`` says no invalidation raced, and put the reference.

    Returns 0, or ``-EFAULT`` when the hva maps no page."""
    kvm = gpc.kvm
    old_khva = gpc.khva
    new_pfn: int | None = None
    new_khva: int | None = None
    gpc.valid = False
    while True:
        mmu_seq = kvm.mmu_notifier_seq
        gpc.lock.release()
        if new_pfn is not None:
            # the previous attempt raced with an invalidation: drop its pfn, wait it out
            kvm_release_pfn_clean(new_pfn)
            wait_until(lambda: kvm.mn_active_invalidate_count == 0,
                       what=f"{gpc.name} refresh retry")
        pfn = gpc_lookup(gpc)
        if is_error_noslot_pfn(pfn):
            gpc.lock.acquire()
            return -EFAULT
        new_pfn = pfn
        new_khva = old_khva if new_pfn == gpc.pfn else new_pfn  # kmap: page_address
        gpc.lock.acquire()
        if not mmu_notifier_retry_cache(kvm, mmu_seq):
            break
    # the kernel sets valid first; under gpc->lock no reader can tell, but I12 is checked
    # between steps, so the model publishes the pfn before the flag
    gpc.pfn = new_pfn
    gpc.khva = new_khva
    gpc.valid = True
    kvm_release_pfn_clean(new_pfn)  # the cache holds no reference
    return 0


@kfunc
def kvm_gpc_refresh(gpc: PfnCache, gpa: int) -> int:
    """virt/kvm/pfncache.c v6.0 (``kvm_gpc_refresh`` from v6.2): under the refresh mutex and
    ``gpc->lock``, set ``gpa``/``uhva`` and, if the cache is invalid or its hva changed,
    ``hva_to_pfn_retry``.

    Returns 0 on success, ``-EINVAL`` if the cache is not active, ``-EFAULT`` if ``gpa``
    is in no memslot or maps no page (the cache is then invalid, its pfn
    ``KVM_PFN_ERR_FAULT``)."""
    gpc.refresh_lock.acquire()
    gpc.lock.acquire()
    if not gpc.active:
        gpc.lock.release()
        gpc.refresh_lock.release()
        return -EINVAL
    old_uhva = gpc.uhva
    ret = 0
    if gpc.gpa != gpa or old_uhva is None:
        gpc.gpa = gpa
        slot = gfn_to_memslot(gpc.kvm.memslots, gpa)
        gpc.uhva = None if slot is None else slot.gfn_to_hva(gpa)
        if slot is None:
            ret = -EFAULT
    if ret == 0 and (not gpc.valid or old_uhva != gpc.uhva):
        ret = hva_to_pfn_retry(gpc)
    if ret:
        gpc.valid = False
        gpc.pfn = None
        gpc.khva = None
    gpc.lock.release()
    gpc.refresh_lock.release()
    return ret


def kvm_gpc_check(gpc: PfnCache, gpa: int) -> bool:
    """virt/kvm/pfncache.c v6.0 (``kvm_gpc_check`` from v6.2), called with ``gpc->lock``
    held: whether the cache is active, for ``gpa``, has an hva, and is valid."""
    return bool(gpc.active and gpc.gpa == gpa and gpc.uhva is not None and gpc.valid)


@kfunc
def kvm_gpc_unmap(kvm: Kvm, gpc: PfnCache) -> None:
    """virt/kvm/pfncache.c v6.0 (``kvm_gfn_to_pfn_cache_unmap``; ``kvm_gpc_unmap`` from
    v6.2): under both locks, invalid and no pfn; the gpa and hva stay (no reference to
    put: kunmap of the old khva only)."""
    gpc.refresh_lock.acquire()
    gpc.lock.acquire()
    gpc.valid = False
    gpc.khva = None
    gpc.pfn = None
    gpc.lock.release()
    gpc.refresh_lock.release()


@kfunc
def kvm_gpc_activate(gpc: PfnCache, gpa: int) -> int:
    """virt/kvm/pfncache.c v6.2: reset the cache and make it active (it is on
    ``kvm->gpc_list`` from set-up in the model), then refresh it.

    Returns what :func:`kvm_gpc_refresh` returns."""
    if not gpc.active:
        gpc.khva = None
        gpc.pfn = None
        gpc.uhva = None
        gpc.valid = False
        gpc.lock.acquire()
        gpc.active = True
        gpc.lock.release()
    return kvm_gpc_refresh(gpc, gpa)


@kfunc
def kvm_gpc_deactivate(gpc: PfnCache) -> None:
    """virt/kvm/pfncache.c v6.2 (``kvm_gfn_to_pfn_cache_destroy`` before): inactive under
    ``gpc->lock``, then ``kvm_gpc_unmap``."""
    if gpc.active:
        gpc.lock.acquire()
        gpc.active = False
        gpc.lock.release()
        kvm_gpc_unmap(gpc.kvm, gpc)
