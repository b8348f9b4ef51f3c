"""fault-vs-cow: the VMM writes to a zero-page-backed guest page while a vCPU faults on it.

The guest page behind gfn 0 was only read so far: its PTE maps the zero page read-only
(``Host.add_zero(1, refault=1)``). The VMM writes to it: ``do_wp_page`` copies it
(``wp_page_copy``) and, inside the MMU-notifier bracket, maps the copy at the same hva
(``ptep_clear_flush_notify``, then ``set_pte_at_notify``, which calls KVM's
``change_pte``); the zero page stays what it is. A vCPU read-faults on gfn 0 meanwhile.

v6.10 dropped KVM's ``change_pte`` hook (f3b65bbaed7c): since ``invalidate_range_start``
zaps and ``mmu_notifier_retry`` refuses a fault while ``mmu_notifier_count`` is raised, it
never finds an SPTE to change. The buggy design drops it too but checks only
``mmu_notifier_seq`` ("the invalidation bumps it at its end"): a fault that looked the zero
page up before the remap and takes ``mmu_lock`` while the invalidation runs installs an
SPTE to the zero page, and nothing removes it once the host maps the copy there. The old
page is not freed, so only ``no-stale-spte`` (I4) sees it. The fix checks the count too
(v5.4's ``mmu_notifier_retry``): that fault retries and finds the copy.
"""

from pfnlab import (
    Check,
    Ghost,
    Host,
    Shared,
    instance,
    scenario,
    variant,
    vcpu_exit,
    vcpu_fault,
    vm_exit,
    vm_on,
)
from pfnlab.kvm import mmu_notifier_retry
from pfnlab.mm import handle_mm_fault

# not refs-balanced: v5.4 leaks the gup reference on the zero page (kvm_is_reserved_pfn is
# true for it, so kvm_release_pfn_clean skips the put), a bug of its own
PROPS = ["no-stale-spte", "no-spte-to-freed"]


class Outcome(Shared):
    """Whether the VMM's write copied the page (ghost: for the goals)."""

    copied = Ghost(False)


@scenario("fault-vs-cow", sizes={"vcpus": 1}, properties=PROPS, goals=["copied"])
def build(variant, sz):
    """the VMM writes to a zero-page-backed guest page while a vCPU read-faults on it"""
    host = Host()
    ram = host.add_zero(1, refault=1, name="ram")
    s = vm_on(host, [ram], sz["vcpus"])
    out = Outcome("cow")

    def vmm():
        out.copied = handle_mm_fault(ram.vma, ram.start, True)

    def vcpu0():
        vcpu_fault(s.vcpus[0], 0)
        vcpu_exit(s.vcpus[0])

    goals = [Check("copied", lambda: out.copied, stable=True)]
    return instance(s, {"vmm": vmm, "vcpu0": vcpu0, "admin": lambda: vm_exit(s.kvm)},
                    PROPS, goals)


def change_pte_dropped(kvm, hva, val):
    """virt/kvm/kvm_main.c v6.10: no ->change_pte (the hook was removed)."""


def retry_seq_only(kvm, mmu_seq):
    """The bug: only the sequence, which an invalidation bumps at its end."""
    return kvm.mmu_notifier_seq != mmu_seq


def retry_seq_and_count(kvm, mmu_seq):
    """The fix: v5.4's check, also while an invalidation runs (count raised)."""
    return mmu_notifier_retry.base(kvm, mmu_seq)


variant("cow-retry-seq-only", parent="v5.4",
        overrides={"kvm_mmu_notifier_change_pte": change_pte_dropped,
                   "mmu_notifier_retry": retry_seq_only},
        summary="no change_pte (as v6.10), and mmu_notifier_retry reads only the sequence")
variant("cow-retry-seq-and-count", parent="cow-retry-seq-only",
        overrides={"mmu_notifier_retry": retry_seq_and_count},
        summary="no change_pte, and mmu_notifier_retry while the count is raised too")
