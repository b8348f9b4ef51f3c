"""set_pte_at_notify -> ->change_pte: what KVM's v5.4 handler does with an SPTE it finds,
and that in v5.4 it finds none (invalidate_range_start zapped it first)."""

from pfnlab.kvm import RET_PF_FIXED, kvm_set_spte_hva, vcpu_fault
from pfnlab.mm import PteVal, handle_mm_fault


def test_change_pte_switches_a_read_only_spte_and_drops_for_a_writable_pte(setup):
    s = setup("v5.4", "anon", 1, refault=1)
    kvm, hva = s.kvm, s.region.start
    assert vcpu_fault(s.vcpus[0], 0, write=True) == RET_PF_FIXED
    sp = kvm.spte_of(1, 0)
    assert sp.spte.pfn == s.region.pfn and sp.spte.writable
    new = s.region.pool.pages[0].pfn
    kvm.mmu_lock.acquire()
    assert kvm_set_spte_hva(kvm, hva, PteVal(new, write=False))  # KSM: the new pfn, RO
    assert sp.spte.pfn == new and not sp.spte.writable
    assert kvm_set_spte_hva(kvm, hva, PteVal(new, write=True))  # COW: dropped
    assert sp.spte is None
    assert not kvm_set_spte_hva(kvm, hva, PteVal(new, write=True))  # nothing left
    kvm.mmu_lock.release()


def test_v5_4_copy_on_write_zaps_before_change_pte(setup):
    s = setup("v5.4", "zero", 1, refault=1)
    kvm, hva = s.kvm, s.region.start
    assert vcpu_fault(s.vcpus[0], 0) == RET_PF_FIXED
    assert kvm.spte_of(1, 0).spte.pfn == s.host.zero_pfn
    seq = kvm.mmu_notifier_seq
    assert handle_mm_fault(s.region.vma, hva, True)  # the VMM's write: wp_page_copy
    new = s.region.pool.pages[0]
    assert s.host.mm.ptes[hva].val == PteVal(new.pfn, write=True)
    assert kvm.spte_of(1, 0).spte is None
    # change_pte's seq++ and invalidate_range_end's; the count is back to 0
    assert (kvm.mmu_notifier_seq, kvm.mmu_notifier_count) == (seq + 2, 0)
