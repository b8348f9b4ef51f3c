"""KVM's MMU as of v5.4.33 (a78986aae9b2 merged): the base model the variants change.

Modules, one idea each:

- :mod:`~pfnlab.kvm.kvm` — ``struct kvm`` state (memslots, SPTEs/rmap, mmu_lock, seq/count)
- :mod:`~pfnlab.kvm.ghost` — the ledger for property checks, a file per idea (read its
  docstring first)
- :mod:`~pfnlab.kvm.pfn` — kvm_main.c pfn classification, get/put, accessed/dirty
- :mod:`~pfnlab.kvm.hva` — gfn → hva → pfn (gup, follow_pfn)
- :mod:`~pfnlab.kvm.spte` — installing and zapping SPTEs
- :mod:`~pfnlab.kvm.notifier` — MMU notifier callbacks, retry check, VM teardown
- :mod:`~pfnlab.kvm.vm` — ``kvm_create_vm``: a VM, its vCPUs, its notifier and ledger
- :mod:`~pfnlab.kvm.fault` — the TDP page fault
- :mod:`~pfnlab.kvm.collapse` — zap collapsible SPTEs (dirty logging off)
- :mod:`~pfnlab.kvm.vcpu_map` — kvm_vcpu_map / kvm_vcpu_unmap
- :mod:`~pfnlab.kvm.pfncache` — mappings KVM keeps without a page reference (PfnCache,
  ``struct gfn_to_pfn_cache``), their invalidation and I12
- :mod:`~pfnlab.kvm.threads` — thread bodies for scenarios

Functions of later kernels, which the later designs (``pfnlab/variants/``) run and a model
of a later kernel imports from here:

- :mod:`~pfnlab.kvm.hugepage` — v5.6+ huge level from the host page tables
  (``kvm_mmu_hugepage_adjust``, ``max_mapping_level``, ``kvm_mmu_max_mapping_level``)
- :mod:`~pfnlab.kvm.refcounted` — v5.13-v6.12 refcounted pages
  (``kvm_pfn_to_refcounted_page``, ``kvm_try_get_pfn``, ``kvm_release_page_clean``, ...)
- :mod:`~pfnlab.kvm.follow_pfn` — v6.13 ``kvm_follow_pfn`` and
  ``kvm_release_faultin_page``
- :mod:`~pfnlab.kvm.mmu_page` — v5.11+ TDP MMU roots (``struct kvm_mmu_page``,
  ``tdp_mmu_root_count``, ``kvm->arch.tdp_mmu_roots``; ``kvm_mmu_init_tdp_mmu`` at set-up)
- :mod:`~pfnlab.kvm.tdp_iter` — v5.16 ``tdp_iter``: the walk of a root's SPTEs
  (``tdp_iter_start``, ``tdp_iter_next``, ``tdp_iter_restart``)
- :mod:`~pfnlab.kvm.tdp_zap` — v5.16 ``tdp_mmu_set_spte``, the yielding walk
  (``tdp_mmu_iter_cond_resched``) and ``zap_gfn_range``
- :mod:`~pfnlab.kvm.tdp_mmu` — v5.16 roots taken and put (``kvm_tdp_mmu_get_root``,
  ``kvm_tdp_mmu_put_root``), ``__kvm_tdp_mmu_zap_gfn_range``, ``kvm_tdp_mmu_zap_all``,
  the notifier's unmap, ``kvm_mmu_load``/``kvm_mmu_unload`` and ``kvm_tdp_mmu_map``
- :mod:`~pfnlab.kvm.pfncache_v5_17` — v5.17 ``gfn_to_pfn_cache`` refresh (keeps a page
  reference): ``kvm_gfn_to_pfn_cache_refresh``, ``kvm_gfn_to_pfn_cache_unmap``
- :mod:`~pfnlab.kvm.pfncache_refresh` — v6.0 refresh (no reference, ``refresh_lock``,
  ``hva_to_pfn_retry`` with ``mmu_notifier_retry_cache``): ``kvm_gpc_refresh``,
  ``kvm_gpc_check``, ``kvm_gpc_activate``, ``kvm_gpc_deactivate``, ``kvm_gpc_unmap``
- :mod:`~pfnlab.kvm.pfncache_notifier` — v5.17+ notifier overrides that invalidate the
  caches (``mn_active_invalidate_count``): ``PFNCACHE_NOTIFIER``

Every kernel function is a :func:`~pfnlab.kernel.kfunc.kfunc`: a variant replaces it by name.
A model file imports the ones it calls or overrides from here (``from pfnlab.kvm import
tdp_page_fault``), with the return conventions of their docstrings (error pfns
``KVM_PFN_ERR_*``, ``is_error_pfn``; fault results ``RET_PF_*``); calling one runs the
checked variant's version.
"""

from pfnlab.kvm import ghost
from pfnlab.kvm.collapse import kvm_mmu_zap_collapsible_spte, kvm_mmu_zap_collapsible_sptes
from pfnlab.kvm.fault import (
    RET_PF_EMULATE,
    RET_PF_ERROR,
    RET_PF_FIXED,
    RET_PF_RETRY,
    __direct_map,
    host_mapping_level,
    kvm_host_page_size,
    mapping_level,
    mmu_gfn_lpage_is_disallowed,
    tdp_page_fault,
    transparent_hugepage_adjust,
    try_async_pf,
)
from pfnlab.kvm.follow_pfn import (
    kvm_follow_pfn,
    kvm_release_faultin_page,
    kvm_set_page_accessed,
    kvm_set_page_dirty,
)
from pfnlab.kvm.hugepage import (
    host_pfn_mapping_level,
    kvm_mmu_hugepage_adjust,
    kvm_mmu_max_mapping_level,
    max_mapping_level,
)
from pfnlab.kvm.hva import (
    EFAULT,
    __gfn_to_pfn_memslot,
    gfn_to_memslot,
    hva_to_pfn,
    hva_to_pfn_fast,
    hva_to_pfn_remapped,
    hva_to_pfn_slow,
)
from pfnlab.kvm.kvm import (
    PT_DIRECTORY_LEVEL,
    PT_PAGE_TABLE_LEVEL,
    Kvm,
    Memslot,
    Spte,
    SpteVal,
    Vcpu,
)
from pfnlab.kvm.mmu_page import KvmMmuPage, TdpMmu, VcpuMmu, kvm_mmu_init_tdp_mmu
from pfnlab.kvm.notifier import (
    kvm_arch_mmu_notifier_invalidate_range,
    kvm_destroy_vm,
    kvm_mmu_notifier_change_pte,
    kvm_mmu_notifier_invalidate_range,
    kvm_mmu_notifier_invalidate_range_end,
    kvm_mmu_notifier_invalidate_range_start,
    kvm_mmu_notifier_release,
    kvm_put_kvm,
    mmu_notifier_retry,
)
from pfnlab.kvm.pfn import (
    KVM_PFN_ERR_FAULT,
    KVM_PFN_ERR_RO_FAULT,
    KVM_PFN_NOSLOT,
    is_error_noslot_pfn,
    is_error_pfn,
    is_noslot_pfn,
    kvm_get_pfn,
    kvm_is_reserved_pfn,
    kvm_is_zone_device_pfn,
    kvm_owner,
    kvm_release_pfn,
    kvm_release_pfn_clean,
    kvm_release_pfn_dirty,
    kvm_set_pfn_accessed,
    kvm_set_pfn_dirty,
)
from pfnlab.kvm.pfncache import (
    PfnCache,
    cache_hva,
    check_secondary_coherent,
    gfn_to_pfn_cache,
    gfn_to_pfn_cache_invalidate_start,
    pfn_cache_lookup,
    pfn_cache_publish,
    touch_gpc,
)
from pfnlab.kvm.pfncache_notifier import (
    PFNCACHE_NOTIFIER,
    invalidate_range_end_v5_17,
    invalidate_range_start_v5_17,
)
from pfnlab.kvm.pfncache_refresh import (
    gpc_lookup,
    hva_to_pfn_retry,
    kvm_gpc_activate,
    kvm_gpc_check,
    kvm_gpc_deactivate,
    kvm_gpc_refresh,
    kvm_gpc_unmap,
    mmu_notifier_retry_cache,
)
from pfnlab.kvm.pfncache_v5_17 import (
    kvm_gfn_to_pfn_cache_check,
    kvm_gfn_to_pfn_cache_refresh,
    kvm_gfn_to_pfn_cache_unmap,
    mmu_notifier_retry_hva,
)
from pfnlab.kvm.refcounted import (
    kvm_is_ad_tracked_pfn,
    kvm_is_zone_device_page,
    kvm_pfn_to_refcounted_page,
    kvm_release_page_clean,
    kvm_release_page_dirty,
    kvm_try_get_pfn,
)
from pfnlab.kvm.spte import (
    drop_spte,
    kvm_mmu_zap_all,
    kvm_set_spte_hva,
    kvm_unmap_hva_range,
    kvm_zap_rmapp,
    mmu_set_spte,
    mmu_spte_clear_track_bits,
    mmu_spte_update,
)
from pfnlab.kvm.tdp_iter import TdpIter, tdp_iter_next, tdp_iter_restart, tdp_iter_start
from pfnlab.kvm.tdp_mmu import (
    KvmGfnRange,
    __kvm_tdp_mmu_zap_gfn_range,
    for_each_tdp_mmu_root,
    for_each_tdp_mmu_root_yield_safe,
    kvm_mmu_load,
    kvm_mmu_unload,
    kvm_tdp_mmu_get_root,
    kvm_tdp_mmu_get_vcpu_root_hpa,
    kvm_tdp_mmu_map,
    kvm_tdp_mmu_put_root,
    kvm_tdp_mmu_unmap_gfn_range,
    kvm_tdp_mmu_zap_all,
    kvm_unmap_gfn_range,
    tdp_mmu_next_root,
)
from pfnlab.kvm.tdp_zap import (
    handle_changed_spte,
    tdp_mmu_iter_cond_resched,
    tdp_mmu_set_spte,
    zap_gfn_range,
)
from pfnlab.kvm.threads import dirty_log_disable, vcpu_exit, vcpu_fault, vcpu_map_thread, vm_exit
from pfnlab.kvm.vcpu_map import HostMap, kvm_vcpu_map, kvm_vcpu_unmap, map_owner, touch_mapping
from pfnlab.kvm.vm import create_vm

__all__ = [
    "EFAULT",
    "KVM_PFN_ERR_FAULT",
    "KVM_PFN_ERR_RO_FAULT",
    "KVM_PFN_NOSLOT",
    "PFNCACHE_NOTIFIER",
    "PT_DIRECTORY_LEVEL",
    "PT_PAGE_TABLE_LEVEL",
    "RET_PF_EMULATE",
    "RET_PF_ERROR",
    "RET_PF_FIXED",
    "RET_PF_RETRY",
    "HostMap",
    "Kvm",
    "KvmGfnRange",
    "KvmMmuPage",
    "Memslot",
    "PfnCache",
    "Spte",
    "SpteVal",
    "TdpIter",
    "TdpMmu",
    "Vcpu",
    "VcpuMmu",
    "__direct_map",
    "__gfn_to_pfn_memslot",
    "__kvm_tdp_mmu_zap_gfn_range",
    "cache_hva",
    "check_secondary_coherent",
    "create_vm",
    "dirty_log_disable",
    "drop_spte",
    "for_each_tdp_mmu_root",
    "for_each_tdp_mmu_root_yield_safe",
    "gfn_to_memslot",
    "gfn_to_pfn_cache",
    "gfn_to_pfn_cache_invalidate_start",
    "ghost",
    "gpc_lookup",
    "handle_changed_spte",
    "host_mapping_level",
    "host_pfn_mapping_level",
    "hva_to_pfn",
    "hva_to_pfn_fast",
    "hva_to_pfn_remapped",
    "hva_to_pfn_retry",
    "hva_to_pfn_slow",
    "invalidate_range_end_v5_17",
    "invalidate_range_start_v5_17",
    "is_error_noslot_pfn",
    "is_error_pfn",
    "is_noslot_pfn",
    "kvm_arch_mmu_notifier_invalidate_range",
    "kvm_destroy_vm",
    "kvm_follow_pfn",
    "kvm_get_pfn",
    "kvm_gfn_to_pfn_cache_check",
    "kvm_gfn_to_pfn_cache_refresh",
    "kvm_gfn_to_pfn_cache_unmap",
    "kvm_gpc_activate",
    "kvm_gpc_check",
    "kvm_gpc_deactivate",
    "kvm_gpc_refresh",
    "kvm_gpc_unmap",
    "kvm_host_page_size",
    "kvm_is_ad_tracked_pfn",
    "kvm_is_reserved_pfn",
    "kvm_is_zone_device_page",
    "kvm_is_zone_device_pfn",
    "kvm_mmu_hugepage_adjust",
    "kvm_mmu_init_tdp_mmu",
    "kvm_mmu_load",
    "kvm_mmu_max_mapping_level",
    "kvm_mmu_notifier_change_pte",
    "kvm_mmu_notifier_invalidate_range",
    "kvm_mmu_notifier_invalidate_range_end",
    "kvm_mmu_notifier_invalidate_range_start",
    "kvm_mmu_notifier_release",
    "kvm_mmu_unload",
    "kvm_mmu_zap_all",
    "kvm_mmu_zap_collapsible_spte",
    "kvm_mmu_zap_collapsible_sptes",
    "kvm_owner",
    "kvm_pfn_to_refcounted_page",
    "kvm_put_kvm",
    "kvm_release_faultin_page",
    "kvm_release_page_clean",
    "kvm_release_page_dirty",
    "kvm_release_pfn",
    "kvm_release_pfn_clean",
    "kvm_release_pfn_dirty",
    "kvm_set_page_accessed",
    "kvm_set_page_dirty",
    "kvm_set_pfn_accessed",
    "kvm_set_pfn_dirty",
    "kvm_set_spte_hva",
    "kvm_tdp_mmu_get_root",
    "kvm_tdp_mmu_get_vcpu_root_hpa",
    "kvm_tdp_mmu_map",
    "kvm_tdp_mmu_put_root",
    "kvm_tdp_mmu_unmap_gfn_range",
    "kvm_tdp_mmu_zap_all",
    "kvm_try_get_pfn",
    "kvm_unmap_gfn_range",
    "kvm_unmap_hva_range",
    "kvm_vcpu_map",
    "kvm_vcpu_unmap",
    "kvm_zap_rmapp",
    "map_owner",
    "mapping_level",
    "max_mapping_level",
    "mmu_gfn_lpage_is_disallowed",
    "mmu_notifier_retry",
    "mmu_notifier_retry_cache",
    "mmu_notifier_retry_hva",
    "mmu_set_spte",
    "mmu_spte_clear_track_bits",
    "mmu_spte_update",
    "pfn_cache_lookup",
    "pfn_cache_publish",
    "tdp_iter_next",
    "tdp_iter_restart",
    "tdp_iter_start",
    "tdp_mmu_iter_cond_resched",
    "tdp_mmu_next_root",
    "tdp_mmu_set_spte",
    "tdp_page_fault",
    "touch_gpc",
    "touch_mapping",
    "transparent_hugepage_adjust",
    "try_async_pf",
    "vcpu_exit",
    "vcpu_fault",
    "vcpu_map_thread",
    "vm_exit",
    "zap_gfn_range",
]
