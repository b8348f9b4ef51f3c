"""virt/kvm/kvm_main.c v5.4.33: the MMU notifier callbacks, the retry check, VM teardown.

``mmu_notifier_count++`` and ``mmu_notifier_seq++`` are plain increments under mmu_lock in
the kernel; here each is one atomic step (same effect under the lock, one step fewer).
``BUG_ON(kvm->mmu_notifier_count < 0)`` reads the count after the unlock in the kernel; the
model checks the value it just wrote (``fail("notifier-balanced")``).
"""

from __future__ import annotations

from typing import Any

from pfnlab import mm
from pfnlab.explore import atomic, fail, free
from pfnlab.kernel.kfunc import kfunc
from pfnlab.kvm import ghost
from pfnlab.kvm.kvm import Kvm, MmuNotifierOps
from pfnlab.kvm.spte import kvm_mmu_zap_all, kvm_set_spte_hva, kvm_unmap_hva_range


@kfunc
def kvm_mmu_notifier_invalidate_range_start(kvm: Kvm, start: int, end: int) -> None:
    """virt/kvm/kvm_main.c v5.4: count++ and zap the range under mmu_lock (TLB flush implied),
    then, with mmu_lock released, ``kvm_arch_mmu_notifier_invalidate_range``."""
    kvm.mmu_lock.acquire()
    atomic(kvm, "mmu_notifier_count", lambda c: (c + 1, None))
    kvm_unmap_hva_range(kvm, start, end)
    kvm.mmu_lock.release()
    kvm_arch_mmu_notifier_invalidate_range(kvm, start, end)


@kfunc
def kvm_mmu_notifier_invalidate_range_end(kvm: Kvm, start: int, end: int) -> None:
    """virt/kvm/kvm_main.c v5.4: seq++, then count-- under mmu_lock; BUG_ON(count < 0)."""
    kvm.mmu_lock.acquire()
    atomic(kvm, "mmu_notifier_seq", lambda s: (s + 1, None))
    count = atomic(kvm, "mmu_notifier_count", lambda c: (c - 1, c - 1))
    kvm.mmu_lock.release()
    if count < 0:
        fail(ghost.NOTIFIER_BALANCED, f"BUG_ON(mmu_notifier_count < 0): count is {count}")


@kfunc
def kvm_mmu_notifier_invalidate_range(kvm: Kvm, start: int, end: int) -> None:
    """virt/kvm/kvm_main.c v5.10: the ``->invalidate_range`` op (none in v5.4: a no-op).

    Called after the host PTEs of [start, end) changed (``ptep_clear_flush_notify``) and
    before ``invalidate_range_end``. e649b3f0188f (v5.10) adds it and moves
    ``kvm_arch_mmu_notifier_invalidate_range`` here from ``invalidate_range_start``."""


@kfunc
def kvm_arch_mmu_notifier_invalidate_range(kvm: Kvm, start: int, end: int) -> None:
    """arch/x86/kvm/x86.c v5.4: reload the APIC-access page if its hva is in the range.

    v5.4 calls it from ``invalidate_range_start`` (KVM subscribes no ``->invalidate_range``
    until later kernels moved it back there).

    The model has no APIC-access page: nothing to do. A model of another mapping that KVM
    keeps without a page reference and must drop when the host PTE changes (a VMCS field
    holding a host physical address) overrides this function."""


@kfunc
def kvm_mmu_notifier_change_pte(kvm: Kvm, hva: int, val: Any) -> None:
    """virt/kvm/kvm_main.c v5.4: under mmu_lock, seq++ and ``kvm_set_spte_hva``.

    v5.4 calls it inside the invalidation bracket, after ``invalidate_range_start`` zapped
    the SPTEs: it finds nothing to change (v6.10 dropped the hook, f3b65bbaed7c)."""
    kvm.mmu_lock.acquire()
    atomic(kvm, "mmu_notifier_seq", lambda s: (s + 1, None))
    kvm_set_spte_hva(kvm, hva, val)
    kvm.mmu_lock.release()


@kfunc
def kvm_mmu_notifier_release(kvm: Kvm) -> None:
    """virt/kvm/kvm_main.c v5.4: kvm_arch_flush_shadow_all → kvm_mmu_zap_all."""
    kvm_mmu_zap_all(kvm)


@kfunc
def mmu_notifier_retry(kvm: Kvm, mmu_seq: int) -> bool:
    """include/linux/kvm_host.h v5.4: retry if an invalidation is running or one ended since."""
    if kvm.mmu_notifier_count or kvm.mmu_notifier_seq != mmu_seq:
        ghost.fault_retried()  # ledger: the witness of an overlap, before any leak check
        return True
    return False


@kfunc
def kvm_destroy_vm(kvm: Kvm) -> None:
    """virt/kvm/kvm_main.c v5.4: mmu_notifier_unregister (→ release: zap all), then free."""
    unregister = getattr(mm, "mmu_notifier_unregister", None)
    if unregister is not None:
        unregister(kvm.mm, kvm)
    else:
        kvm_mmu_notifier_release(kvm)
    free(kvm, "kvm_destroy_vm")


@kfunc
def kvm_put_kvm(kvm: Kvm) -> None:
    """virt/kvm/kvm_main.c v5.4: drop a VM reference; the last one destroys the VM."""
    if atomic(kvm, "users_count", lambda n: (n - 1, n - 1)) == 0:
        kvm_destroy_vm(kvm)


#: ``kvm_mmu_notifier_ops``: the callbacks a VM's subscription calls (each dispatches to the
#: variant's override of its name at the time of the call)
KVM_MMU_NOTIFIER_OPS = MmuNotifierOps(
    invalidate_range_start=kvm_mmu_notifier_invalidate_range_start,
    invalidate_range_end=kvm_mmu_notifier_invalidate_range_end,
    invalidate_range=kvm_mmu_notifier_invalidate_range,
    release=kvm_mmu_notifier_release,
    change_pte=kvm_mmu_notifier_change_pte,
)


def kvm_init_mmu_notifier(kvm: Kvm) -> None:
    """virt/kvm/kvm_main.c v5.4 (set-up only): ``kvm->mmu_notifier.ops =
    &kvm_mmu_notifier_ops`` and ``mmu_notifier_register(&kvm->mmu_notifier, current->mm)``."""
    kvm.mmu_notifier_ops = KVM_MMU_NOTIFIER_OPS
    mm.mmu_notifier_register(kvm.mm, kvm)
