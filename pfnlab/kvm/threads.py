"""Thread bodies for scenarios: plain functions; wrap them in a lambda with their arguments.

- :func:`vcpu_fault`: a guest access to ``gfn`` that EPT-faults, retried until it resolves.
  The kernel returns RET_PF_RETRY to the guest, which re-executes and faults again. To keep
  executions finite, the model retries only once no invalidation is in progress
  (``wait_until(mmu_notifier_count == 0)``): a retry that would fail again at once is a
  stutter step. Each further retry needs a new invalidation to have started after the
  previous attempt read ``mmu_notifier_seq``, and scenarios have finitely many, so the loop
  ends. (If the count never drops back to 0 the wait shows up as a hang.)
- :func:`vcpu_map_thread`: ``kvm_vcpu_map``, one access to the mapped memory, unmap.
- :func:`dirty_log_disable`: publish the slot without dirty logging, then
  ``kvm_mmu_zap_collapsible_sptes`` (``kvm_mmu_slot_apply_flags``).
- :func:`vcpu_exit` / :func:`vm_exit`: close a vCPU file / the VM file
  (``kvm_put_kvm``; the last one runs ``kvm_destroy_vm``: notifier unregister, zap all).
"""

from __future__ import annotations

from dataclasses import replace

from pfnlab.explore import wait_until
from pfnlab.kvm import ghost
from pfnlab.kvm.collapse import kvm_mmu_zap_collapsible_sptes
from pfnlab.kvm.fault import RET_PF_RETRY, fault_owner, tdp_page_fault
from pfnlab.kvm.kvm import Kvm, Vcpu, check_gfn
from pfnlab.kvm.notifier import kvm_put_kvm
from pfnlab.kvm.vcpu_map import kvm_vcpu_map, kvm_vcpu_unmap, map_owner, touch_mapping
from pfnlab.properties import NOTIFIER_BALANCED


def vcpu_fault(vcpu: Vcpu, gfn: int, write: bool = False) -> int:
    """A vCPU faults on ``gfn`` until the fault is not RET_PF_RETRY; returns the result."""
    kvm = vcpu.kvm
    # In the kernel a gfn in no memslot is MMIO (emulated, no pfn): nothing any property
    # of this model sees, so a scenario that faults there is a set-up mistake (the memslot
    # geometry is set up once; flag changes keep it). Refused, naming the memslots.
    check_gfn(kvm, gfn)
    while True:
        with ghost.operation(fault_owner(vcpu)):
            r = tdp_page_fault(vcpu, gfn, write)
        if r != RET_PF_RETRY:
            return r
        # a count that never returns to 0 is an unbalanced notifier bracket (I10)
        wait_until(
            lambda: kvm.mmu_notifier_count == 0,
            what=f"{vcpu.name} fault retry",
            prop=NOTIFIER_BALANCED,
        )


def vcpu_map_thread(vcpu: Vcpu, gfn: int, dirty: bool = True) -> bool:
    """kvm_vcpu_map, touch the memory, kvm_vcpu_unmap; False if the map failed."""
    with ghost.operation(map_owner(vcpu)):
        hmap = kvm_vcpu_map(vcpu, gfn)
        if hmap is not None:
            touch_mapping(hmap)
            kvm_vcpu_unmap(vcpu, hmap, dirty)
    return hmap is not None


def dirty_log_disable(kvm: Kvm, slot_id: int = 0) -> None:
    """KVM_SET_USER_MEMORY_REGION clearing KVM_MEM_LOG_DIRTY_PAGES on slot ``slot_id``."""
    slots = kvm.memslots
    new = tuple(replace(s, dirty_logging=False) if s.id == slot_id else s for s in slots)
    kvm.memslots = new
    for s in new:
        if s.id == slot_id:
            kvm_mmu_zap_collapsible_sptes(kvm, s)


def vcpu_exit(vcpu: Vcpu) -> None:
    """Close the vCPU file: drop its VM reference."""
    kvm_put_kvm(vcpu.kvm)


def vm_exit(kvm: Kvm) -> None:
    """Close the VM file: drop its reference (kvm_destroy_vm if it was the last)."""
    kvm_put_kvm(kvm)
