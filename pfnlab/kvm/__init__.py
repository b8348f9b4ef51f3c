"""KVM's MMU as of v5.4.33 (a78986aae9b2 merged): the base model the variants change.

Modules, one idea each:

- :mod:`~pfnlab.kvm.kvm` — ``struct kvm`` state (memslots, SPTEs/rmap, mmu_lock, seq/count)
- :mod:`~pfnlab.kvm.ghost` — the ledger for property checks (read its docstring first)
- :mod:`~pfnlab.kvm.pfn` — kvm_main.c pfn classification, get/put, accessed/dirty
- :mod:`~pfnlab.kvm.hva` — gfn → hva → pfn (gup, follow_pfn)
- :mod:`~pfnlab.kvm.spte` — installing and zapping SPTEs
- :mod:`~pfnlab.kvm.notifier` — MMU notifier callbacks, retry check, VM teardown
- :mod:`~pfnlab.kvm.fault` — the TDP page fault
- :mod:`~pfnlab.kvm.collapse` — zap collapsible SPTEs (dirty logging off)
- :mod:`~pfnlab.kvm.vcpu_map` — kvm_vcpu_map / kvm_vcpu_unmap
- :mod:`~pfnlab.kvm.threads` — thread bodies for scenarios

Every kernel function is a :func:`~pfnlab.model.kfunc.kfunc`: a variant replaces it by name.
"""

from pfnlab.kvm import ghost
from pfnlab.kvm.collapse import kvm_mmu_zap_collapsible_spte, kvm_mmu_zap_collapsible_sptes
from pfnlab.kvm.fault import (
    RET_PF_EMULATE,
    RET_PF_ERROR,
    RET_PF_FIXED,
    RET_PF_RETRY,
    tdp_page_fault,
    transparent_hugepage_adjust,
)
from pfnlab.kvm.hva import __gfn_to_pfn_memslot, hva_to_pfn
from pfnlab.kvm.kvm import (
    PT_DIRECTORY_LEVEL,
    PT_PAGE_TABLE_LEVEL,
    Kvm,
    Memslot,
    Spte,
    SpteVal,
    Vcpu,
    create_vm,
)
from pfnlab.kvm.notifier import kvm_destroy_vm, mmu_notifier_retry
from pfnlab.kvm.pfn import (
    kvm_get_pfn,
    kvm_is_reserved_pfn,
    kvm_is_zone_device_pfn,
    kvm_release_pfn_clean,
    kvm_release_pfn_dirty,
    kvm_set_pfn_accessed,
    kvm_set_pfn_dirty,
)
from pfnlab.kvm.spte import mmu_spte_clear_track_bits
from pfnlab.kvm.threads import dirty_log_disable, vcpu_exit, vcpu_fault, vcpu_map_thread, vm_exit
from pfnlab.kvm.vcpu_map import kvm_vcpu_map, kvm_vcpu_unmap

__all__ = [
    "PT_DIRECTORY_LEVEL",
    "PT_PAGE_TABLE_LEVEL",
    "RET_PF_EMULATE",
    "RET_PF_ERROR",
    "RET_PF_FIXED",
    "RET_PF_RETRY",
    "Kvm",
    "Memslot",
    "Spte",
    "SpteVal",
    "Vcpu",
    "__gfn_to_pfn_memslot",
    "create_vm",
    "dirty_log_disable",
    "ghost",
    "hva_to_pfn",
    "kvm_destroy_vm",
    "kvm_get_pfn",
    "kvm_is_reserved_pfn",
    "kvm_is_zone_device_pfn",
    "kvm_mmu_zap_collapsible_spte",
    "kvm_mmu_zap_collapsible_sptes",
    "kvm_release_pfn_clean",
    "kvm_release_pfn_dirty",
    "kvm_set_pfn_accessed",
    "kvm_set_pfn_dirty",
    "kvm_vcpu_map",
    "kvm_vcpu_unmap",
    "mmu_notifier_retry",
    "mmu_spte_clear_track_bits",
    "tdp_page_fault",
    "transparent_hugepage_adjust",
    "vcpu_exit",
    "vcpu_fault",
    "vcpu_map_thread",
    "vm_exit",
]
